"""Readers with spacing, atomic writers that never overwrite unless asked (core/io.py)."""

import os

import numpy as np
import pytest
import tifffile

from napari_heatseg.core.io import HeatsegIOError, read_image, stem
from napari_heatseg.core.outputs import atomic_write, write_labels


@pytest.fixture
def labels():
    out = np.zeros((4, 6, 5), np.uint16)
    out[1:3, 2:5, 1:4] = 300
    return out


@pytest.mark.parametrize("name", ["a.tif", "a.tiff", "a.npy", "a.nii", "a.nii.gz"])
def test_roundtrip_keeps_values_dtype_and_spacing(tmp_path, labels, name):
    if name.startswith("a.nii"):
        pytest.importorskip("nibabel")
    path = write_labels(tmp_path / name, labels, spacing=(2.5, 0.5, 0.25))
    back, spacing = read_image(path)
    np.testing.assert_array_equal(back, labels)
    assert back.dtype == labels.dtype
    if name.endswith(".npy"):
        assert spacing is None
    else:
        assert spacing == pytest.approx((2.5, 0.5, 0.25))
    assert stem(path) == "a"
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left


def test_nifti_axes_are_zyx(tmp_path):
    nibabel = pytest.importorskip("nibabel")
    xyz = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)  # (x, y, z) as stored
    nibabel.save(nibabel.Nifti1Image(xyz, np.diag([0.5, 0.7, 3.0, 1.0])), str(tmp_path / "v.nii.gz"))
    image, spacing = read_image(tmp_path / "v.nii.gz")
    assert image.shape == (4, 3, 2)
    assert image[3, 2, 1] == xyz[1, 2, 3]
    assert spacing == pytest.approx((3.0, 0.7, 0.5))


def test_imagej_tif_spacing(tmp_path):
    data = np.zeros((3, 8, 8), np.uint8)
    tifffile.imwrite(tmp_path / "ij.tif", data, imagej=True, resolution=(1 / 0.2, 1 / 0.3),
                     metadata={"spacing": 2.0, "unit": "um", "axes": "ZYX"})
    _, spacing = read_image(tmp_path / "ij.tif")
    assert spacing == pytest.approx((2.0, 0.3, 0.2))


def test_dev_data_spacing_is_read():
    from dev_data import DATA

    path = DATA / "mri3d_pyradiomics" / "images" / "brain1.tif"
    if not path.exists():
        pytest.skip("dev data absent")
    image, spacing = read_image(path)
    assert image.shape == (25, 256, 256)
    assert spacing == pytest.approx((6.5, 0.78125, 0.78125))


def test_refuses_to_overwrite_unless_asked(tmp_path, labels):
    path = write_labels(tmp_path / "out.tif", labels)
    before = path.read_bytes()
    with pytest.raises(HeatsegIOError, match="already exists.*overwrite"):
        write_labels(path, labels * 0)
    assert path.read_bytes() == before
    write_labels(path, labels * 0, overwrite=True)
    assert not read_image(path)[0].any()


def test_failed_write_leaves_no_partial_file(tmp_path, labels):
    target = tmp_path / "out.tif"

    def crash(tmp):
        tmp.write_bytes(b"half a file")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(target, crash)
    assert list(tmp_path.iterdir()) == []
    # an existing output survives a crashed overwrite untouched
    write_labels(target, labels)
    before = target.read_bytes()
    with pytest.raises(RuntimeError):
        atomic_write(target, crash, overwrite=True)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]


def test_missing_and_read_only_folders(tmp_path, labels, monkeypatch):
    with pytest.raises(HeatsegIOError, match="does not exist"):
        write_labels(tmp_path / "nope" / "out.tif", labels)
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    # root ignores chmod, so the permission check is simulated for this one folder
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(locked) else real_access(p, mode))
    with pytest.raises(HeatsegIOError, match="not writable"):
        write_labels(locked / "out.tif", labels)
    assert list(locked.iterdir()) == []


def test_unwritable_place_is_a_clear_error(tmp_path, labels):
    if not os.path.isdir("/proc"):
        pytest.skip("needs /proc")
    with pytest.raises(HeatsegIOError, match="choose another"):
        write_labels("/proc/heatseg-test.tif", labels)


@pytest.mark.parametrize("name, content", [
    ("corrupt.tif", b"II*\x00garbage that is not a tiff"),
    ("corrupt.npy", b"\x93NUMPY not really"),
    ("corrupt.nii.gz", b"\x1f\x8b\x08 broken gzip"),
    ("empty.tif", b""),
])
def test_corrupt_files_get_a_clear_error(tmp_path, name, content):
    if ".nii" in name:
        pytest.importorskip("nibabel")
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(HeatsegIOError, match="corrupt or truncated"):
        read_image(path)


def test_truncated_tif(tmp_path):
    data = np.random.default_rng(0).integers(0, 255, (4, 64, 64), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "full.tif", data, photometric="minisblack")
    raw = (tmp_path / "full.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(HeatsegIOError, match="cut.tif"):
        read_image(tmp_path / "cut.tif")


def test_missing_file_and_unknown_type(tmp_path):
    with pytest.raises(HeatsegIOError, match="no such file"):
        read_image(tmp_path / "ghost.tif")
    (tmp_path / "x.xyz").write_bytes(b"")
    with pytest.raises(HeatsegIOError, match="unsupported file type"):
        read_image(tmp_path / "x.xyz")


def test_png_labels_roundtrip_and_lossy_or_3d_refused(tmp_path):
    labels = np.zeros((20, 30), np.uint16)
    labels[5:10, 5:20] = 300
    path = write_labels(tmp_path / "a.png", labels)
    back, spacing = read_image(path)
    np.testing.assert_array_equal(back, labels)
    assert spacing is None
    with pytest.raises(HeatsegIOError, match="cannot hold labels exactly.*png or .tif"):
        write_labels(tmp_path / "a.jpg", labels)
    with pytest.raises(HeatsegIOError, match="png holds 2D labels.*tif or .npy"):
        write_labels(tmp_path / "b.png", np.zeros((2, 5, 5), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_rgba_png_and_jpg_pictures_are_read_channels_last(tmp_path):
    import imageio.v3 as iio

    rgba = np.random.default_rng(0).integers(0, 255, (12, 16, 4), dtype=np.uint8)
    iio.imwrite(tmp_path / "p.png", rgba)
    np.testing.assert_array_equal(read_image(tmp_path / "p.png")[0], rgba)
    iio.imwrite(tmp_path / "p.jpg", rgba[..., :3])
    assert read_image(tmp_path / "p.jpg")[0].shape == (12, 16, 3)


def test_folder_lock_keeps_a_second_holder_out_until_released(tmp_path):
    from napari_heatseg.core.folder_lock import LOCK_NAME, folder_lock

    with folder_lock(tmp_path) as lock:
        assert lock.read_text().split()[0] == str(os.getpid())
        with pytest.raises(HeatsegIOError, match=f"another heatseg run \\(pid {os.getpid()}\\)"):
            with folder_lock(tmp_path):
                pass
        assert lock.exists()  # the refused taker leaves the holder's lock alone
    assert not (tmp_path / LOCK_NAME).exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("output, how", [("img.tif", "is"), ("data", "contains"), ("img.tif/x.tif", "lies inside")])
def test_check_separate_names_how_an_output_meets_an_input(tmp_path, output, how):
    from napari_heatseg.core.outputs import check_separate

    (tmp_path / "data").mkdir()
    inputs = [("IMAGE", tmp_path / ("data/img.tif" if how == "contains" else "img.tif"))]
    with pytest.raises(HeatsegIOError, match=f"-o .* {how} the IMAGE file"):
        check_separate([("-o", tmp_path / output)], inputs)
    check_separate([("-o", tmp_path / "elsewhere.tif")], inputs)  # apart: no error


def test_folder_lock_without_hard_links(tmp_path, monkeypatch):
    from napari_heatseg.core.folder_lock import folder_lock

    def no_links(*args):
        raise OSError(1, "Operation not permitted")  # FAT, some network shares

    monkeypatch.setattr(os, "link", no_links)
    with folder_lock(tmp_path) as lock:
        assert lock.read_text().split()[0] == str(os.getpid())
        with pytest.raises(HeatsegIOError, match="another heatseg run"):
            with folder_lock(tmp_path):
                pass
    assert list(tmp_path.iterdir()) == []


def test_an_unsupported_label_output_lists_only_the_types_that_hold_labels(tmp_path):
    from napari_heatseg.core.outputs import write_labels

    with pytest.raises(HeatsegIOError, match="unsupported file type") as error:
        write_labels(tmp_path / "labels.gif", np.zeros((4, 4), np.uint8))
    assert ".png" in str(error.value) and ".jpg" not in str(error.value)
