"""NRRD, MetaImage and DICOM series through SimpleITK: axis order, spacing, geometry kept in the labels.

Every file is written here with SimpleITK: an oblique (rotated), anisotropic volume whose axes
all differ in length, so that a swapped axis, a spacing in the wrong order or a lost origin or
direction fails a test.
"""

import locale
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sitk = pytest.importorskip("SimpleITK")

from napari_heatseg.cli import main  # noqa: E402
from napari_heatseg.core.io import HeatsegIOError, colour_axis, read_image, stored_shape  # noqa: E402
from napari_heatseg.core.medical_io import Geometry, read_geometry, read_medical  # noqa: E402
from napari_heatseg.core.outputs import write_labels  # noqa: E402

SPACING_XYZ = (0.5, 0.7, 3.0)  # ITK order: x (columns), y (rows), z (slices)
ORIGIN_XYZ = (-12.5, 30.0, 7.25)
ANGLE = 0.3  # rotation about the scanner's z axis: an oblique acquisition
QUICK = ["--param", "max_num_iter=5"]


def _direction_xyz():
    c, s = np.cos(ANGLE), np.sin(ANGLE)
    return (c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0)


def _volume(shape_zyx=(6, 20, 24), dtype=np.int16):
    """A bright ball (radius 6 mm, round in physical units) in a noisy background, and its truth."""
    z, y, x = np.indices(shape_zyx).astype(float)
    centre = [(n - 1) / 2 for n in shape_zyx]
    spacing_zyx = SPACING_XYZ[::-1]
    r2 = sum(((a - c) * s) ** 2 for a, c, s in zip((z, y, x), centre, spacing_zyx))
    truth = r2 <= 6.0 ** 2
    noise = np.random.default_rng(7).normal(0, 8, shape_zyx)  # result-bearing seed
    image = (100 + 200 * truth + noise).astype(dtype)
    return image, truth, r2


def _itk(array, *, spacing=SPACING_XYZ, origin=ORIGIN_XYZ, direction=None):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction or _direction_xyz())
    return image


def _write_dicom_series(image, folder, positions=None):
    """One DICOM file per slice of the SimpleITK ``image``, with the tags GDCM sorts and places by.

    GDCM's writer leaves the process in the C locale (ASCII text for later subprocesses in this
    pytest run), so the locale is put back.
    """
    saved = locale.setlocale(locale.LC_ALL)
    try:
        return _write_slices(image, folder, positions)
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def _write_slices(image, folder, positions):
    folder.mkdir()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()  # keep the series UID set below, so the slices form one series
    d = image.GetDirection()
    series_uid = "1.2.826.0.1.3680043.2.1125.9.17"
    for k in range(image.GetDepth()):
        plane = image[:, :, k]
        position = positions[k] if positions is not None else image.TransformIndexToPhysicalPoint((0, 0, k))
        for tag, value in [("0008|0060", "CT"), ("0020|000d", series_uid + ".1"), ("0020|000e", series_uid),
                           ("0020|0013", str(k + 1)), ("0020|0032", "\\".join(map(str, position))),
                           ("0020|0037", "\\".join(map(str, (d[0], d[3], d[6], d[1], d[4], d[7]))))]:
            plane.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{k:03d}.dcm"))
        writer.Execute(plane)
    return folder


def _assert_same_geometry(written, reference):
    """The SimpleITK images (or readers) ``written`` and ``reference`` lie in the same place."""
    np.testing.assert_allclose(written.GetSpacing(), reference.GetSpacing(), rtol=1e-6)
    np.testing.assert_allclose(written.GetOrigin(), reference.GetOrigin(), atol=1e-6)
    np.testing.assert_allclose(written.GetDirection(), reference.GetDirection(), atol=1e-6)


def _write(image, path):
    sitk.WriteImage(image, str(path))
    return path


@pytest.fixture
def scan():
    image, truth, r2 = _volume()
    return image, truth, r2, _itk(image)


# --------------------------------------------------------------------------------- reading

@pytest.mark.parametrize("name", ["v.nrrd", "v.nhdr", "v.mha", "v.mhd"])
def test_axis_order_spacing_and_geometry_are_read_as_zyx(tmp_path, scan, name):
    array, _, _, image = scan
    path = _write(image, tmp_path / name)
    data, spacing = read_image(path)
    assert data.shape == (6, 20, 24) and data.dtype == np.int16
    assert data[5, 3, 1] == image[1, 3, 5]  # array [z, y, x] is ITK's index (x, y, z)
    np.testing.assert_array_equal(data, array)
    assert spacing == pytest.approx((3.0, 0.7, 0.5))
    assert stored_shape(path) == ((6, 20, 24), np.dtype(np.int16))
    geometry = read_geometry(path)
    assert geometry.spacing == pytest.approx(spacing)
    for index_zyx in [(0, 0, 0), (5, 3, 1), (2, 19, 23)]:  # p = origin + direction @ (spacing * i), in z, y, x
        expected = image.TransformIndexToPhysicalPoint(tuple(int(i) for i in index_zyx[::-1]))[::-1]
        got = np.asarray(geometry.origin) + np.asarray(geometry.direction) @ (np.asarray(geometry.spacing) * index_zyx)
        np.testing.assert_allclose(got, expected, atol=1e-9)


def test_a_dicom_series_is_read_in_slice_order_with_its_geometry(tmp_path):
    array, _, _ = _volume((3, 20, 24))
    image = _itk(array)
    folder = _write_dicom_series(image, tmp_path / "series")
    data, spacing = read_image(folder)
    np.testing.assert_array_equal(data, array)
    assert spacing == pytest.approx((3.0, 0.7, 0.5))
    assert stored_shape(folder) == ((3, 20, 24), np.dtype(np.int16))
    np.testing.assert_array_equal(read_image(folder / "slice002.dcm")[0], array)  # any file: its whole series
    assert read_geometry(folder / "slice001.dcm") == read_geometry(folder)
    header_only, (_, full_read) = read_geometry(folder), read_medical(folder)
    assert header_only.spacing == pytest.approx(full_read.spacing)
    np.testing.assert_allclose(header_only.origin, full_read.origin, atol=1e-6)
    np.testing.assert_allclose(header_only.direction, full_read.direction, atol=1e-6)
    np.testing.assert_allclose(full_read.origin, ORIGIN_XYZ[::-1], atol=1e-6)


def test_header_geometry_of_an_unevenly_sliced_series_is_itks(tmp_path):
    array, _, _ = _volume((3, 8, 10))
    image = _itk(array)
    first = image.TransformIndexToPhysicalPoint((0, 0, 0))
    positions = [first, image.TransformIndexToPhysicalPoint((0, 0, 1)), image.TransformIndexToPhysicalPoint((0, 0, 3))]
    folder = _write_dicom_series(image, tmp_path / "uneven", positions)
    assert read_geometry(folder).spacing[0] == pytest.approx(read_medical(folder)[1].spacing[0])
    assert read_geometry(folder).spacing[0] == pytest.approx(4.5)  # ITK: first to last slice over the gaps


def test_2d_and_colour_files(tmp_path):
    plane = np.arange(12 * 16, dtype=np.uint16).reshape(12, 16)
    path = _write(_itk(plane, spacing=(0.25, 0.5), origin=(1.0, 2.0), direction=(1.0, 0.0, 0.0, 1.0)),
                  tmp_path / "p.nrrd")
    data, spacing = read_image(path)
    np.testing.assert_array_equal(data, plane)
    assert spacing == pytest.approx((0.5, 0.25))
    rgb = np.random.default_rng(0).integers(0, 255, (12, 16, 3), dtype=np.uint8)
    colour = sitk.GetImageFromArray(rgb, isVector=True)
    colour.SetSpacing((0.25, 0.5))
    path = _write(colour, tmp_path / "rgb.mha")
    data, spacing = read_image(path)
    np.testing.assert_array_equal(data, rgb)
    assert spacing == pytest.approx((0.5, 0.25)) and colour_axis(path, data) == -1
    assert stored_shape(path) == ((12, 16, 3), np.dtype(np.uint8))


# --------------------------------------------------------------------------------- writing

@pytest.mark.parametrize("image_name, labels_name", [("v.nrrd", "l.nrrd"), ("v.nhdr", "l.nrrd"),
                                                      ("v.mha", "l.mha"), ("v.mhd", "l.nrrd"),
                                                      ("v.nrrd", "l.nii.gz")])
def test_labels_keep_the_input_geometry(tmp_path, scan, image_name, labels_name):
    pytest.importorskip("nibabel") if labels_name.endswith(".nii.gz") else None
    array, truth, _, image = scan
    source = _write(image, tmp_path / image_name)
    labels = truth.astype(np.uint8) * 3
    out = write_labels(tmp_path / labels_name, labels, spacing=(1.0, 1.0, 1.0), like=source)
    written = sitk.ReadImage(str(out))
    _assert_same_geometry(written, image)  # the input's, not the spacing argument
    np.testing.assert_array_equal(sitk.GetArrayFromImage(written), labels)
    assert read_image(out)[0].dtype == np.uint8
    assert not [p.name for p in tmp_path.iterdir() if ".part" in p.name]
    with pytest.raises(HeatsegIOError, match="already exists.*overwrite"):
        write_labels(out, labels * 0, like=source)
    np.testing.assert_array_equal(read_image(out)[0], labels)


def test_nrrd_labels_of_a_nifti_input_keep_its_geometry(tmp_path, scan):
    pytest.importorskip("nibabel")
    _, truth, _, image = scan
    source = _write(image, tmp_path / "v.nii.gz")  # ITK writes the NIfTI affine (RAS) from its LPS geometry
    out = write_labels(tmp_path / "l.nrrd", truth, like=source)
    _assert_same_geometry(sitk.ReadImage(str(out)), sitk.ReadImage(str(source)))


def test_labels_without_a_medical_input_are_axis_aligned_with_the_spacing(tmp_path):
    labels = np.zeros((4, 6, 8), np.uint16)
    labels[1:3, 2:4, 3:6] = 700
    out = write_labels(tmp_path / "l.nrrd", labels, spacing=(2.0, 0.5, 0.25))
    written = sitk.ReadImage(str(out))
    assert written.GetSpacing() == pytest.approx((0.25, 0.5, 2.0))
    assert written.GetOrigin() == pytest.approx((0, 0, 0))
    assert written.GetDirection() == pytest.approx(np.eye(3).ravel())
    back, spacing = read_image(out)
    np.testing.assert_array_equal(back, labels)
    assert spacing == pytest.approx((2.0, 0.5, 0.25))


def test_a_geometry_from_layer_metadata_writes_back_aligned(tmp_path, scan):
    _, truth, _, image = scan
    source = _write(image, tmp_path / "v.nrrd")
    (layer_data, kwargs, _), = _napari_reader(source)
    geometry = Geometry(**kwargs["metadata"]["geometry"])  # lists, as napari keeps them
    out = write_labels(tmp_path / "drawn.mha", truth, like=geometry)
    _assert_same_geometry(sitk.ReadImage(str(out)), image)


def test_dicom_labels_go_to_nrrd_or_nifti_with_the_series_geometry(tmp_path):
    pytest.importorskip("nibabel")
    array, truth, _ = _volume((3, 20, 24))
    series = _write_dicom_series(_itk(array), tmp_path / "series")
    reference = read_medical(series)
    for name in ("labels.nrrd", "labels.nii.gz"):
        written = sitk.ReadImage(str(write_labels(tmp_path / name, truth, like=series)))
        assert written.GetSpacing() == pytest.approx(reference[1].spacing[::-1], rel=1e-6)
        np.testing.assert_allclose(written.GetOrigin(), reference[1].origin[::-1], atol=1e-4)
        np.testing.assert_allclose(np.reshape(written.GetDirection(), (3, 3))[::-1, ::-1], reference[1].direction,
                                   atol=1e-6)


def test_a_failed_medical_write_leaves_nothing(tmp_path, monkeypatch):
    def full_disk(*args, **kwargs):
        raise RuntimeError("Exception thrown in SimpleITK WriteImage: x.cxx:1:\nitk::ERROR: NrrdImageIO(0x1): "
                           "Write: Error writing: No space left on device")

    monkeypatch.setattr(sitk, "WriteImage", full_disk)
    with pytest.raises(HeatsegIOError, match=r"l\.nrrd: cannot write it .*No space left on device"):
        write_labels(tmp_path / "l.nrrd", np.ones((2, 3, 4), np.uint8))
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- command line

def test_cli_writes_labels_with_the_input_geometry(tmp_path, capsys):
    image, truth, r2 = _volume()
    _write(_itk(image), tmp_path / "scan.nrrd")
    _write(_itk((r2 <= 2.5 ** 2).astype(np.uint8)), tmp_path / "start.nrrd")
    status = main(["segment", str(tmp_path / "scan.nrrd"), "--start", str(tmp_path / "start.nrrd"),
                   "-o", str(tmp_path / "labels.nrrd"), "--scope", "object", *QUICK])
    assert status == 0, capsys.readouterr().err
    written = sitk.ReadImage(str(tmp_path / "labels.nrrd"))
    _assert_same_geometry(written, sitk.ReadImage(str(tmp_path / "scan.nrrd")))
    labels = sitk.GetArrayFromImage(written) > 0
    assert np.logical_and(labels, truth).sum() / np.logical_or(labels, truth).sum() > 0.8


def test_cli_segments_a_dicom_series_into_nrrd_and_refuses_dicom_output_before_the_work(tmp_path, capsys,
                                                                                        monkeypatch):
    from napari_heatseg.core import batch

    array, truth, r2 = _volume((5, 20, 24))
    series = _write_dicom_series(_itk(array), tmp_path / "series")
    write_labels(tmp_path / "start.nrrd", (r2 <= 2.5 ** 2).astype(np.uint8), like=series)
    (tmp_path / "a_folder").mkdir()
    with monkeypatch.context() as patch:
        patch.setattr(batch, "segment_file", lambda *a, **k: pytest.fail("the work started before the refusal"))
        for out in ("labels.dcm", "a_folder"):
            assert main(["segment", str(series), "--start", str(tmp_path / "start.nrrd"), "-o", str(tmp_path / out),
                         "--overwrite", *QUICK]) == 1
            error = capsys.readouterr().err
            assert "does not write DICOM" in error and ".nrrd or .nii.gz" in error
    assert main(["segment", str(series), "--start", str(tmp_path / "start.nrrd"), "-o", str(tmp_path / "labels.nrrd"),
                 "--scope", "object", *QUICK]) == 0
    written = sitk.ReadImage(str(tmp_path / "labels.nrrd"))
    series_image = read_medical(series)[1]
    assert written.GetSpacing() == pytest.approx(series_image.spacing[::-1])
    np.testing.assert_allclose(written.GetOrigin(), series_image.origin[::-1], atol=1e-4)
    assert "DICOM is not written" in " ".join(_help("segment").split())


def _help(command):
    result = subprocess.run([sys.executable, "-m", "napari_heatseg.cli", command, "--help"], capture_output=True,
                            text=True, env=_env())
    return result.stdout


def test_batch_reads_and_writes_the_medical_formats(tmp_path, capsys):
    image, _, r2 = _volume()
    start = (r2 <= 2.5 ** 2).astype(np.uint8)
    images, starts = tmp_path / "images", tmp_path / "starts"
    images.mkdir()
    starts.mkdir()
    _write(_itk(image), images / "a.nrrd")
    _write(_itk(image), images / "b.mhd")
    _write_dicom_series(_itk(image[:3]), images / "c")
    for name, shape_source in (("a", start), ("b", start), ("c", start[:3])):
        _write(_itk(shape_source), starts / f"{name}.nrrd")
    status = main(["batch", str(images), "-o", str(tmp_path / "out"), "--start-dir", str(starts), "--workers", "1",
                   "--scope", "object", *QUICK])
    assert status == 0, capsys.readouterr()
    for name, source in (("a.nrrd", images / "a.nrrd"), ("b.mha", images / "b.mhd")):
        _assert_same_geometry(sitk.ReadImage(str(tmp_path / "out" / name)), sitk.ReadImage(str(source)))
    geometry = read_medical(images / "c")[1]
    assert sitk.ReadImage(str(tmp_path / "out" / "c.nrrd")).GetSpacing() == pytest.approx(geometry.spacing[::-1])


# ------------------------------------------------------------------------------------ napari

def _napari_reader(path):
    from napari_heatseg._reader import get_reader

    reader = get_reader(str(path))
    assert callable(reader)
    return reader(str(path))


def test_napari_reader_gives_the_spacing_as_scale_and_the_geometry(tmp_path, scan):
    from napari_heatseg._reader import get_reader

    array, _, _, image = scan
    series = _write_dicom_series(_itk(array[:3]), tmp_path / "series")
    for path, name in ((_write(image, tmp_path / "v.nrrd"), "v"), (series / "slice001.dcm", "series")):
        (data, kwargs, layer_type), = _napari_reader(path)
        assert layer_type == "image" and kwargs["scale"] == pytest.approx((3.0, 0.7, 0.5))
        assert data.shape == (6 if name == "v" else 3, 20, 24) and kwargs["name"] == name
        geometry = Geometry(**kwargs["metadata"]["geometry"])
        assert geometry.origin == pytest.approx(ORIGIN_XYZ[::-1], abs=1e-6)
        np.testing.assert_allclose(np.reshape(_direction_xyz(), (3, 3))[::-1, ::-1], geometry.direction, atol=1e-6)
    assert get_reader(str(tmp_path / "v.tif")) is None  # napari's own readers take the rest
    assert get_reader(str(series)) is None  # folders are napari's (it would ask about every folder otherwise)
    assert get_reader([str(tmp_path / "v.nrrd")] * 2) is None  # a stack of files is not one volume


@pytest.mark.parametrize("components, layer_option", [(3, "rgb"), (2, "channel_axis")])
def test_napari_reader_with_several_components(tmp_path, components, layer_option):
    pixels = np.zeros((5, 6, components), np.uint8)
    colour = sitk.GetImageFromArray(pixels, isVector=True)
    colour.SetSpacing((0.25, 0.5))
    (data, kwargs, _), = _napari_reader(_write(colour, tmp_path / "c.nrrd"))
    assert data.shape == (5, 6, components) and kwargs["scale"] == pytest.approx((0.5, 0.25))
    assert layer_option in kwargs


def test_the_manifest_offers_the_reader_for_files_only():
    from npe2 import PluginManager

    pm = PluginManager.instance()
    pm.discover()
    for path in ("scan.nrrd", "scan.NHDR", "scan.mha", "scan.mhd", "slice1.dcm"):
        assert "napari-heatseg" in {r.plugin_name for r in pm.iter_compatible_readers([path])}, path
    folder = str(Path(__file__).parent)
    assert "napari-heatseg" not in {r.plugin_name for r in pm.iter_compatible_readers([folder])}


@pytest.mark.gui
def test_a_viewer_opens_a_nrrd_with_its_scale(tmp_path, scan, request):
    pytest.importorskip("napari")
    viewer = request.getfixturevalue("make_napari_viewer")()
    (layer,) = viewer.open(str(_write(scan[3], tmp_path / "v.nrrd")), plugin="napari-heatseg")
    assert tuple(layer.scale) == pytest.approx((3.0, 0.7, 0.5))
    assert layer.metadata["geometry"]["origin"] == pytest.approx(ORIGIN_XYZ[::-1])


# ------------------------------------------------------------------------------------ errors

def test_clear_errors(tmp_path, scan):
    with pytest.raises(HeatsegIOError, match="unsupported file type; use one of .*\\.nrrd.*DICOM series"):
        read_image(tmp_path / "scan.xyz")
    series = _write_dicom_series(scan[3][:, :, :2], tmp_path / "series")
    (tmp_path / "empty").mkdir()
    with pytest.raises(HeatsegIOError, match="empty: is a folder without a DICOM series"):
        read_image(tmp_path / "empty")
    with pytest.raises(HeatsegIOError, match="does not write DICOM; write the labels as .nrrd or .nii.gz"):
        write_labels(tmp_path / "labels.dcm", np.ones((2, 3, 4), np.uint8))
    with pytest.raises(HeatsegIOError, match="does not write DICOM"):
        write_labels(series, np.ones((2, 3, 4), np.uint8))
    for two_files, one_file in ((".mhd", ".mha"), (".nhdr", ".nrrd")):
        with pytest.raises(HeatsegIOError, match=f"second file.*write the labels as \\{one_file}"):
            write_labels(tmp_path / f"labels{two_files}", np.ones((2, 3, 4), np.uint8))
    (tmp_path / "bad.nrrd").write_text("NRRD0004\nnot a field\n")
    with pytest.raises(HeatsegIOError, match="bad.nrrd: cannot read this file .*re-export"):
        read_image(tmp_path / "bad.nrrd")
    with pytest.raises(ValueError, match="labels have 2 axes .* geometry .* has 3"):
        write_labels(tmp_path / "l.nrrd", np.ones((3, 4), np.uint8), like=tmp_path / "series")


def test_two_series_in_one_folder_are_refused(tmp_path, scan):
    folder = _write_dicom_series(scan[3][:, :, :2], tmp_path / "two")
    other = _write_dicom_series(scan[3][:, :, 2:4], tmp_path / "other")
    saved = locale.setlocale(locale.LC_ALL)  # GDCM's writer changes it (see _write_dicom_series)
    for path in other.iterdir():  # the same file names would overwrite: rename, and give it a new series UID
        plane = sitk.ReadImage(str(path))
        plane.SetMetaData("0020|000e", "1.2.826.0.1.3680043.2.1125.9.18")
        writer = sitk.ImageFileWriter()
        writer.KeepOriginalImageUIDOn()
        writer.SetFileName(str(folder / f"b_{path.name}"))
        writer.Execute(plane)
    locale.setlocale(locale.LC_ALL, saved)
    with pytest.raises(HeatsegIOError, match="holds 2 DICOM series .*give one file of the series.*own folder"):
        read_image(folder)
    volume = sitk.GetArrayFromImage(scan[3])
    np.testing.assert_array_equal(read_image(folder / "slice001.dcm")[0], volume[:2])  # a file names its series
    np.testing.assert_array_equal(read_image(folder / "b_slice001.dcm")[0], volume[2:4])


def test_without_simpleitk_the_error_names_the_extra(tmp_path, scan, monkeypatch):
    path = _write(scan[3], tmp_path / "v.nrrd")
    monkeypatch.setitem(sys.modules, "SimpleITK", None)  # `import SimpleITK` now raises ImportError
    install = 'pip install "napari-heatseg\\[medical\\]"'
    with pytest.raises(HeatsegIOError, match=f"v.nrrd: heatseg needs SimpleITK to read .nrrd files.*{install}"):
        read_image(path)
    with pytest.raises(HeatsegIOError, match=f"needs SimpleITK to write .nrrd files.*{install}"):
        write_labels(tmp_path / "l.nrrd", np.ones((2, 3, 4), np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["v.nrrd"]


def _env():
    src = str(Path(__file__).resolve().parents[1] / "src")
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])))


def test_simpleitk_is_imported_only_when_a_medical_file_is_read():
    code = ("import sys, napari_heatseg, napari_heatseg.core.io, napari_heatseg.core.outputs, "
            "napari_heatseg.core.batch, napari_heatseg._reader\n"
            "print('SimpleITK' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=120)
    assert result.stdout.strip() == "False", result.stderr
