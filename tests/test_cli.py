"""The `heatseg` command: segment, batch, demo; file safety (never overwrite, atomic, resumable)."""

import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile

from napari_heatseg.cli import main
from napari_heatseg.core.io import read_image
from napari_heatseg.samples import load_sample

QUICK = ["--param", "max_num_iter=5"]  # where the exact result is not the point


def heatseg(*args, cwd=None, timeout=120):
    """Run the CLI in a subprocess (the installed script if present, else the module)."""
    exe = shutil.which("heatseg")
    cmd = [exe] if exe else [sys.executable, "-m", "napari_heatseg.cli"]
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout)


@pytest.fixture(scope="module")
def nuclei():
    sample = load_sample("nuclei2d")
    return sample["image"], sample["start"], sample["truth"]


def _blobs(folder, n, nuclei, start_folder=None):
    image, start, _ = nuclei
    folder.mkdir()
    if start_folder is not None:
        start_folder.mkdir()
    for i in range(n):
        tifffile.imwrite(folder / f"img{i}.tif", np.roll(image, 15 * i, axis=1)[:128, :128])
        if start_folder is not None:
            tifffile.imwrite(start_folder / f"img{i}.tif", np.roll(start, 15 * i, axis=1)[:128, :128])


def test_entry_point_is_installed():
    assert shutil.which("heatseg") is not None, "pip install -e . should install the `heatseg` script"


@pytest.mark.slow
def test_demo_writes_masks_overlays_and_table(tmp_path):
    out = tmp_path / "demo"
    result = heatseg("demo", "--out", out, *QUICK)
    assert result.returncode == 0, result.stderr
    assert str(out.resolve()) in result.stdout  # it names its folder
    for name in ("nuclei2d", "mri3d", "rgb_photo"):
        labels, _ = read_image(out / f"{name}_labels.tif")
        assert labels.any()
        assert (out / f"{name}_overlay.png").stat().st_size > 1000
    rows = (out / "results.csv").read_text().splitlines()
    assert rows[0] == "sample,shape,scope,iou,seconds" and len(rows) == 4
    nuclei_iou = float(rows[1].split(",")[3])
    assert 0 < nuclei_iou <= 1
    assert "| mri3d |" in (out / "results.md").read_text()
    # a second run replaces its own files (the README's first command works twice) ...
    again = heatseg("demo", "--out", out, *QUICK)
    assert again.returncode == 0, again.stderr
    # ... but never writes into a folder that holds anything else
    (out / "notes.txt").write_text("mine")
    refused = heatseg("demo", "--out", out, *QUICK)
    assert refused.returncode == 1 and "notes.txt" in refused.stderr and "Traceback" not in refused.stderr
    assert (out / "notes.txt").read_text() == "mine"


def test_version():
    result = heatseg("--version")
    assert result.returncode == 0 and result.stdout.startswith("heatseg 0.")


@pytest.mark.slow
def test_segment_writes_labels_with_spacing_and_refuses_overwrite(tmp_path):
    zz, yy, xx = np.mgrid[:8, :40, :40]
    volume = ((yy - 20) ** 2 + (xx - 20) ** 2 + (6 * (zz - 4)) ** 2 < 12**2).astype(np.float32)
    volume += np.random.default_rng(0).normal(0, 0.1, volume.shape).astype(np.float32)
    tifffile.imwrite(tmp_path / "vol.tif", volume, metadata={"spacing_zyx": [3.0, 0.5, 0.5]})
    start = np.zeros(volume.shape, np.uint8)
    start[3:6, 17:23, 17:23] = 4
    np.save(tmp_path / "start.npy", start)
    out = tmp_path / "labels.tif"
    result = heatseg("segment", tmp_path / "vol.tif", "--start", tmp_path / "start.npy", "-o", out)
    assert result.returncode == 0, result.stderr
    labels, spacing = read_image(out)
    assert spacing == pytest.approx((3.0, 0.5, 0.5))  # from the input file's metadata
    assert set(np.unique(labels)) == {0, 4} and labels.dtype == np.uint8
    truth = volume > 0.5
    assert (truth & (labels > 0)).sum() / (truth | (labels > 0)).sum() > 0.7
    before = out.read_bytes()
    refused = heatseg("segment", tmp_path / "vol.tif", "--start", tmp_path / "start.npy", "-o", out, *QUICK)
    assert refused.returncode == 1 and "already exists" in refused.stderr
    assert out.read_bytes() == before
    forced = heatseg("segment", tmp_path / "vol.tif", "--start", tmp_path / "start.npy", "-o", out,
                     "--overwrite", "--spacing", "1,1,1", *QUICK)
    assert forced.returncode == 0, forced.stderr
    assert read_image(out)[1] == pytest.approx((1.0, 1.0, 1.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.tif", "start.npy", "vol.tif"]


def test_segment_a_jpeg_photo_from_a_png_box_and_batch_writes_png(tmp_path, capsys):
    """Photos come as jpg: read them, and write the labels losslessly as png."""
    import imageio.v3 as iio

    import napari_heatseg as hs

    sample = load_sample("rgb_photo")
    iio.imwrite(tmp_path / "coffee.jpg", sample["image"], quality=95)
    iio.imwrite(tmp_path / "box.png", sample["start"].astype(np.uint8))
    out = tmp_path / "cup.png"
    result = heatseg("segment", tmp_path / "coffee.jpg", "--start", tmp_path / "box.png", "-o", out,
                     "--channel-axis", "-1", "--scope", "inside")
    assert result.returncode == 0, result.stderr
    photo = iio.imread(tmp_path / "coffee.jpg")
    expected = hs.segment(photo, sample["start"], channel_axis=-1, scope="inside")
    np.testing.assert_array_equal(read_image(out)[0], expected)
    assert 0.05 < expected.mean() < 0.9  # a cup, not nothing or everything
    (tmp_path / "in").mkdir()
    (tmp_path / "coffee.jpg").rename(tmp_path / "in" / "coffee.jpg")
    assert main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--start", str(tmp_path / "box.png"),
                 "--channel-axis", "-1", "--scope", "inside"]) == 0
    np.testing.assert_array_equal(read_image(tmp_path / "out" / "coffee.png")[0], expected)


def test_segment_stack_mode(tmp_path, nuclei):
    image, start, _ = nuclei
    stack = np.stack([image[:96, :96]] * 3)
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="minisblack")
    np.save(tmp_path / "start.npy", start[:96, :96])  # one slice's start, used for every slice
    code = main(["segment", str(tmp_path / "stack.tif"), "--start", str(tmp_path / "start.npy"),
                 "-o", str(tmp_path / "out.npy"), "--stack", "independent", "--scope", "all", *QUICK])
    assert code == 0
    out = np.load(tmp_path / "out.npy")
    assert out.shape == stack.shape
    np.testing.assert_array_equal(out[0], out[2])


def _user_error_cases(tmp_path, nuclei):
    image, start, _ = nuclei
    np.save(tmp_path / "img.npy", image)
    np.save(tmp_path / "start.npy", start)
    np.save(tmp_path / "small.npy", start[:100])
    (tmp_path / "corrupt.tif").write_bytes(b"II*\x00 not a tiff at all")
    (tmp_path / "truncated.npy").write_bytes((tmp_path / "img.npy").read_bytes()[:500])
    img, st = str(tmp_path / "img.npy"), str(tmp_path / "start.npy")
    out = str(tmp_path / "o.tif")
    return {
        "corrupt tif": (["segment", str(tmp_path / "corrupt.tif"), "--start", st, "-o", out], "corrupt"),
        "truncated npy": (["segment", str(tmp_path / "truncated.npy"), "--start", st, "-o", out], "truncated"),
        "missing input": (["segment", str(tmp_path / "nope.tif"), "--start", st, "-o", out], "no such file"),
        "missing out folder": (["segment", img, "--start", st, "-o", str(tmp_path / "no" / "o.tif")],
                               "does not exist"),
        "output is input": (["segment", img, "--start", st, "-o", img, "--overwrite"], "never replaces"),
        "unknown param": (["segment", img, "--start", st, "-o", out, "--param", "foo=1"], "no parameter 'foo'"),
        "bad param syntax": (["segment", img, "--start", st, "-o", out, "--param", "lam"], "name=value"),
        "bad spacing": (["segment", img, "--start", st, "-o", out, "--spacing", "1,x"], "--spacing"),
        "negative spacing": (["segment", img, "--start", st, "-o", out, "--spacing", "1,-1"], "positive"),
        "unknown method": (["segment", img, "--start", st, "-o", out, "--method", "magic"], "unknown"),
        "start shape": (["segment", img, "--start", str(tmp_path / "small.npy"), "-o", out], "shape"),
        "unsupported type": (["segment", str(tmp_path / "x.xyz"), "--start", st, "-o", out], "unsupported"),
        "batch no start": (["batch", str(tmp_path), "-o", str(tmp_path / "b")], "exactly one of"),
        "batch into input": (["batch", str(tmp_path), "-o", str(tmp_path), "--start", st], "never replaces"),
    }


@pytest.mark.parametrize("case", ["corrupt tif", "truncated npy", "missing input", "missing out folder",
                                  "output is input", "unknown param", "bad param syntax", "bad spacing",
                                  "negative spacing", "unknown method", "start shape", "unsupported type",
                                  "batch no start", "batch into input"])
def test_user_errors_are_one_clear_line(tmp_path, nuclei, capsys, case):
    argv, expected = _user_error_cases(tmp_path, nuclei)[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert expected.lower() in err.lower(), err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, nothing replaced


def test_batch_finishes_despite_a_corrupt_file_and_resumes(tmp_path, nuclei, capsys):
    _blobs(tmp_path / "in", 3, nuclei, start_folder=tmp_path / "starts")
    (tmp_path / "in" / "img1_bad.tif").write_bytes(b"II*\x00 garbage")
    out = tmp_path / "out"
    argv = ["batch", str(tmp_path / "in"), "-o", str(out), "--start-dir", str(tmp_path / "starts"),
            "--scope", "all", "--workers", "1", *QUICK]
    assert main(argv) == 1  # a failure is reported in the exit status
    report = capsys.readouterr().out
    assert "done 3, skipped 0, failed 1" in report
    assert "img1_bad.tif" in report and "corrupt" in report
    for i in range(3):
        labels, _ = read_image(out / f"img{i}.tif")
        assert labels.any()
        sidecar = json.loads((out / f"img{i}.heatseg.json").read_text())
        assert sidecar["settings"]["params"] == {"max_num_iter": 5} and sidecar["start"].endswith(f"img{i}.tif")
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(argv) == 1
    assert "done 0, skipped 3, failed 1" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps  # nothing rewritten


def test_batch_with_shared_start_and_otsu_start(tmp_path, nuclei, capsys):
    image, start, truth = nuclei
    _blobs(tmp_path / "in", 2, nuclei)
    tifffile.imwrite(tmp_path / "shared.tif", start[:128, :128])
    assert main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "a"), "--start",
                 str(tmp_path / "shared.tif"), "--scope", "all", "--workers", "1", *QUICK]) == 0
    assert "done 2, skipped 0, failed 0" in capsys.readouterr().out
    again = ["batch", str(tmp_path / "in"), "-o", str(tmp_path / "a"), "--start", str(tmp_path / "shared.tif"),
             "--scope", "all", "--workers", "1", "--param", "max_num_iter=6"]
    assert main(again) == 0
    assert "skipped img0.tif: output exists (made with other parameters" in capsys.readouterr().out
    assert main(again + ["--overwrite"]) == 0
    assert "done 2, skipped 0, failed 0" in capsys.readouterr().out
    assert json.loads((tmp_path / "a" / "img0.heatseg.json").read_text())["settings"]["params"] == {"max_num_iter": 6}
    assert main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "b"), "--start-method",
                 "threshold_otsu", "--scope", "all", "--workers", "1"]) == 0
    labels, _ = read_image(tmp_path / "b" / "img0.tif")
    gt = truth[:128, :128] > 0
    assert (gt & (labels > 0)).sum() / (gt | (labels > 0)).sum() > 0.5  # Otsu start, then heat


def test_batch_missing_start_is_reported_not_fatal(tmp_path, nuclei, capsys):
    _blobs(tmp_path / "in", 2, nuclei, start_folder=tmp_path / "starts")
    (tmp_path / "starts" / "img1.tif").unlink()
    assert main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--start-dir",
                 str(tmp_path / "starts"), "--workers", "1", *QUICK]) == 1
    report = capsys.readouterr().out
    assert "done 1, skipped 0, failed 1" in report and "no start file named img1" in report


@pytest.mark.slow
def test_interrupted_batch_resumes(tmp_path, nuclei):
    image, start, _ = nuclei
    (tmp_path / "in").mkdir()
    for i in range(8):
        tifffile.imwrite(tmp_path / "in" / f"img{i}.tif", np.roll(image, 9 * i, axis=0))
    tifffile.imwrite(tmp_path / "start.tif", start)
    out = tmp_path / "out"
    exe = shutil.which("heatseg")
    cmd = [exe] if exe else [sys.executable, "-m", "napari_heatseg.cli"]
    cmd += ["batch", str(tmp_path / "in"), "-o", str(out), "--start", str(tmp_path / "start.tif"),
            "--scope", "all", "--workers", "1", "--param", "coarse_to_fine=false"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (out.exists() and list(out.glob("img*.tif"))):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    finished = sorted(p.name for p in out.glob("img*.tif"))
    if proc.returncode == 0:
        pytest.skip("the batch finished before it could be interrupted (machine too fast)")
    assert proc.returncode == 130 and "resume" in err
    assert 1 <= len(finished) < 8
    assert not [p for p in out.iterdir() if ".part" in p.name]  # no half-written output
    for name in finished:  # every output present is complete
        assert read_image(out / name)[0].shape == image.shape
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"done {8 - len(finished)}, skipped {len(finished)}, failed 0" in again.stdout


@pytest.mark.slow
def test_segment_slices_on_a_local_dask_cluster(tmp_path, nuclei):
    image, start, _ = nuclei
    stack = np.stack([np.roll(image, 9 * i, axis=1)[:96, :96] for i in range(4)])
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="minisblack")
    np.save(tmp_path / "start.npy", start[:96, :96])
    args = ["segment", str(tmp_path / "stack.tif"), "--start", str(tmp_path / "start.npy"), "--stack",
            "independent", "--scope", "all", *QUICK]
    assert main(args + ["-o", str(tmp_path / "serial.npy")]) == 0
    assert main(args + ["-o", str(tmp_path / "parallel.npy"), "--workers", "2"]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "parallel.npy"), np.load(tmp_path / "serial.npy"))


@pytest.mark.slow
def test_batch_on_a_local_dask_cluster(tmp_path, nuclei, capsys):
    _blobs(tmp_path / "in", 4, nuclei, start_folder=tmp_path / "starts")
    argv = ["batch", str(tmp_path / "in"), "-o", "{}", "--start-dir", str(tmp_path / "starts"),
            "--scope", "all", *QUICK]
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    assert main([a.format(serial) for a in argv] + ["--workers", "1"]) == 0, capsys.readouterr()
    code = main([a.format(parallel) for a in argv] + ["--workers", "2"])
    report = capsys.readouterr()
    assert code == 0 and "on 2 local workers" in report.err, report
    for i in range(4):  # same answers whoever computes them
        np.testing.assert_array_equal(read_image(serial / f"img{i}.tif")[0], read_image(parallel / f"img{i}.tif")[0])


def test_methods_command(capsys):
    assert main(["methods"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "heat"


def test_segment_zarr_volume_by_chunks(tmp_path, capsys):
    zarr = pytest.importorskip("zarr")
    rng = np.random.default_rng(4)
    zz, yy, xx = np.mgrid[:12, :32, :32]
    image = (500 + 400 * ((yy - 16) ** 2 + (xx - 16) ** 2 + (zz - 6) ** 2 < 8**2) + rng.normal(0, 60, zz.shape))
    start = np.zeros(zz.shape, np.uint8)
    start[5:8, 14:18, 14:18] = 1
    for name, array in (("image.zarr", image.astype(np.int16)), ("start.zarr", start)):
        zarr.create_array(store=str(tmp_path / name), shape=array.shape, chunks=(12, 16, 16), dtype=array.dtype)[:] = array
    argv = ["segment", str(tmp_path / "image.zarr"), "--start", str(tmp_path / "start.zarr"), "-o",
            str(tmp_path / "labels.zarr"), "--scope", "all", "--param", "model='mean'", "--param", "max_num_iter=8"]
    assert main(argv) == 0, capsys.readouterr()
    labels = zarr.open_array(str(tmp_path / "labels.zarr"), mode="r")[:]
    expected = __import__("napari_heatseg").segment(image.astype(np.int16), start, scope="all", model="mean",
                                                    coarse_to_fine=False, max_num_iter=8)
    np.testing.assert_array_equal(labels, expected)
    assert main(argv) == 1 and "already exists" in capsys.readouterr().err


def test_segment_instances_gives_one_id_per_object(tmp_path, nuclei, capsys):
    from scipy import ndimage as ndi

    image, start, _ = nuclei
    np.save(tmp_path / "img.npy", image)
    np.save(tmp_path / "start.npy", start)
    common = ["segment", str(tmp_path / "img.npy"), "--start", str(tmp_path / "start.npy"), "--scope", "all"]
    assert main([*common, "-o", str(tmp_path / "all.npy")]) == 0
    assert main([*common, "-o", str(tmp_path / "objects.npy"), "--instances"]) == 0
    objects = np.load(tmp_path / "objects.npy")
    blobs = ndi.label(np.load(tmp_path / "all.npy") > 0)[1]
    assert f"({objects.max()} objects," in capsys.readouterr().out
    assert np.array_equal(np.unique(objects), np.arange(objects.max() + 1))  # ids 1..N
    assert objects.max() > 0.5 * blobs  # specks dropped...
    assert ndi.label(objects > 0)[1] < objects.max()  # ...and touching nuclei split
    code = main(["segment", str(tmp_path / "img.npy"), "--start", str(tmp_path / "start.npy"),
                 "-o", str(tmp_path / "o.npy"), "--instances"])
    assert code == 1 and "--scope all" in capsys.readouterr().err


def test_core_advice_is_given_as_flags(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (40, 48, 5), dtype=np.uint8)  # 5 channels: not told
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="minisblack")
    start = np.zeros((40, 48), np.uint8)
    start[10:20, 10:20] = 1
    tifffile.imwrite(tmp_path / "start.tif", start)
    result = heatseg("segment", tmp_path / "rgb.tif", "--start", tmp_path / "start.tif", "-o", tmp_path / "o.tif")
    assert result.returncode == 1 and "--channel-axis -1" in result.stderr, result.stderr
    assert "channel_axis" not in result.stderr


def test_colour_is_told_from_each_file_and_a_painted_start_is_read(tmp_path):
    """A folder mixing grey and colour pictures is batched without --channel-axis; a start
    saved as RGBA from a paint program (equal channels, opaque) is labels."""
    import imageio.v3 as iio

    yy, xx = np.mgrid[:48, :64]
    disk = (yy - 24) ** 2 + (xx - 30) ** 2 < 12**2
    grey = np.where(disk, 200, 40).astype(np.uint8)
    colour = np.stack([np.where(disk, 220, 30), np.where(disk, 60, 90), np.where(disk, 40, 160)], -1).astype(np.uint8)
    (tmp_path / "in").mkdir()
    iio.imwrite(tmp_path / "in" / "grey.png", grey)
    iio.imwrite(tmp_path / "in" / "colour.png", colour)
    mark = np.zeros((48, 64), np.uint8)
    mark[20:28, 26:34] = 1
    painted = np.stack([mark * 255] * 3 + [np.full_like(mark, 255)], axis=-1)
    iio.imwrite(tmp_path / "start.png", painted)
    result = heatseg("batch", tmp_path / "in", "-o", tmp_path / "out", "--start", tmp_path / "start.png",
                     "--workers", "1")
    assert result.returncode == 0, result.stderr
    for name in ("grey", "colour"):
        labels, _ = read_image(tmp_path / "out" / f"{name}.png")
        assert labels.shape == (48, 64)
        assert ((labels > 0) == disk).mean() > 0.97


def test_segment_writes_an_overlay_for_the_eye(tmp_path, nuclei):
    import imageio.v3 as iio

    image, start, _ = nuclei
    np.save(tmp_path / "img.npy", image)
    np.save(tmp_path / "start.npy", start)
    args = ["segment", tmp_path / "img.npy", "--start", tmp_path / "start.npy", "-o", tmp_path / "o.tif", *QUICK]
    result = heatseg(*args, "--overlay", tmp_path / "o.png")
    assert result.returncode == 0, result.stderr
    rgb = iio.imread(tmp_path / "o.png")
    assert rgb.ndim == 3 and rgb.shape[-1] == 3
    yellow = (rgb[..., 0] > 200) & (rgb[..., 1] > 200) & (rgb[..., 2] < 60)
    assert yellow.sum() > 50  # the result's outline is drawn
    refused = heatseg(*args, "--overlay", tmp_path / "o.jpg", "--overwrite")
    assert refused.returncode == 1 and "give a .png path" in refused.stderr


def test_methods_say_what_each_does_and_segment_help_lists_the_heat_parameters():
    listed = heatseg("methods", "-v")
    assert listed.returncode == 0
    lines = dict(line.split(": ", 1) for line in listed.stdout.splitlines())
    import napari_heatseg as hs

    assert list(lines) == hs.methods()
    assert "heat semigroup" in lines["heat"] and "--param tau, lam" in lines["heat"]
    assert "skimage.segmentation.random_walker" in lines["random_walker"] and ":func:" not in listed.stdout
    helped = heatseg("segment", "--help")
    assert "tau (default automatic)" in helped.stdout and "reach (default 8.0)" in helped.stdout
