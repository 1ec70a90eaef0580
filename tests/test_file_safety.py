"""Data safety of the files heatseg writes (issue 19): nothing half-written looks finished, no
input is ever replaced, one bad image fails alone, Ctrl+C stops cleanly.

Full disks are simulated in-process (the writers are patched to raise ``ENOSPC``), unwritable
folders likewise (the tests may run as root, who ignores permissions); signals are real, sent
to a subprocess, with bounded waits. (The file is not called ``test_data_safety.py``: that
name is taken by the viewer's tests in ``tests/widgets``.)
"""

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_heatseg.cli import main
from napari_heatseg.samples import load_sample
from zarr_volumes import zarr_ball_volume

QUICK = ["--param", "max_num_iter=5"]
ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture(scope="module")
def nuclei():
    sample = load_sample("nuclei2d")
    return sample["image"][:96, :96], sample["start"][:96, :96]


def _images(folder, nuclei, n=3, names=None):
    image, start = nuclei
    folder.mkdir(exist_ok=True)
    for i, name in enumerate(names or [f"img{i}.tif" for i in range(n)]):
        tifffile.imwrite(folder / name, np.roll(image, 11 * i, axis=1))
    tifffile.imwrite(folder.parent / "start.tif", start)
    return folder.parent / "start.tif"


def _batch(tmp_path, *extra, inputs="in", out="out"):
    return ["batch", str(tmp_path / inputs), "-o", str(tmp_path / out), "--start", str(tmp_path / "start.tif"),
            "--scope", "all", "--workers", "1", *QUICK, *extra]


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def _one_line(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _zarr_volume(folder, name="vol"):
    return zarr_ball_volume(folder / f"{name}.zarr", folder / f"{name}_start.zarr", (12, 32, 32), 8,
                            ((1, 2), (2, 2), (2, 2)), (12, 16, 16), seed=4)


# ------------------------------------------------------------- 1. atomic zarr output

def _cut_final_write(monkeypatch, out_folder):
    """dask.array.to_zarr into ``out_folder`` writes one chunk, then the disk is full."""
    import dask.array as da
    import zarr

    real = da.to_zarr

    def cut(array, url, *args, **kwargs):
        if Path(str(url)).parent != Path(out_folder):  # the work stores of the iteration
            return real(array, url, *args, **kwargs)
        store = zarr.create_array(store=str(url), shape=array.shape, chunks=array.chunksize, dtype=array.dtype,
                                  overwrite=True)
        first = tuple(slice(0, c) for c in array.chunksize)
        store[first] = np.asarray(array[first])
        raise ENOSPC

    monkeypatch.setattr(da, "to_zarr", cut)


def test_cut_zarr_write_leaves_nothing_and_failed_overwrite_keeps_the_result(tmp_path, monkeypatch):
    zarr = pytest.importorskip("zarr")
    from napari_heatseg.core.ictm.chunked import segment_chunked

    image, start = _zarr_volume(tmp_path)
    out = tmp_path / "labels.zarr"
    with monkeypatch.context() as patch:
        _cut_final_write(patch, tmp_path)
        with pytest.raises(OSError, match="No space left"):
            segment_chunked(str(image), str(start), out=out, max_num_iter=3, workdir=tmp_path / "work")
    assert not out.exists()  # no store that opens as a result
    assert not [p.name for p in tmp_path.iterdir() if ".part" in p.name]
    good = segment_chunked(str(image), str(start), out=out, max_num_iter=3).compute()
    assert good.any() and zarr.open_array(str(out), mode="r").attrs["heatseg_complete"] is True
    with monkeypatch.context() as patch:
        _cut_final_write(patch, tmp_path)
        with pytest.raises(OSError, match="No space left"):
            segment_chunked(str(image), str(start), out=out, max_num_iter=1, overwrite=True,
                            workdir=tmp_path / "work")
    np.testing.assert_array_equal(zarr.open_array(str(out), mode="r")[:], good)  # the earlier result survives


def test_resume_tells_an_incomplete_zarr_store_from_a_finished_one(tmp_path, capsys):
    zarr = pytest.importorskip("zarr")
    image, start = _zarr_volume(tmp_path)
    out = tmp_path / "labels.zarr"
    zarr.create_array(store=str(out), shape=(12, 32, 32), chunks=(6, 16, 16), dtype=np.uint8)  # no marker
    argv = ["segment", str(image), "--start", str(start), "-o", str(out), "--scope", "all",
            "--param", "model='mean'", "--param", "max_num_iter=3"]
    assert main(argv) == 1
    assert "incomplete" in _one_line(capsys)
    assert main(argv + ["--overwrite"]) == 0
    capsys.readouterr()
    assert main(argv) == 1
    err = _one_line(capsys)
    assert "already exists" in err and "incomplete" not in err


# ------------------------------------------------------------ 2. a dead worker fails alone

_POISON = """
import os
import napari_heatseg.core.batch as batch

_read = batch.__dict__.setdefault("_unpoisoned_read_image", batch.read_image)  # a preload may run twice


def read_image(path):
    if "poison" in str(path):
        os._exit(1)  # the worker process dies, as when the kernel kills it for memory
    return _read(path)


batch.read_image = read_image
"""


@pytest.mark.slow
def test_an_image_whose_worker_dies_fails_alone(tmp_path, nuclei, capsys):
    distributed = pytest.importorskip("dask.distributed")
    import dask

    _images(tmp_path / "in", nuclei, names=["a.tif", "poison.tif", "z.tif"])
    (tmp_path / "poison_preload.py").write_text(_POISON)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                     silence_logs=50, preload=[str(tmp_path / "poison_preload.py")]) as cluster:
        code = main(_batch(tmp_path, "--scheduler", cluster.scheduler_address))
    report = capsys.readouterr().out
    assert code == 1
    assert "done 2, skipped 0, failed 1" in report, report
    assert "failed  poison.tif: the worker segmenting it stopped" in report
    assert (tmp_path / "out" / "a.tif").exists() and (tmp_path / "out" / "z.tif").exists()


# ------------------------------------------------------------------- 3. uint64 label ids

def test_chunked_keeps_uint64_label_ids_above_2_to_53(tmp_path):
    pytest.importorskip("zarr")
    from napari_heatseg.core.ictm.chunked import segment_chunked

    big = np.uint64(1152921504606859321)  # float64 would make it ...264
    zz, yy, xx = np.mgrid[:8, :24, :24]
    image = 100.0 + 50 * ((yy - 12) ** 2 + (xx - 12) ** 2 + (zz - 4) ** 2 < 5**2)
    start = np.zeros(image.shape, np.uint64)
    start[3:6, 10:14, 10:14] = big
    labels = segment_chunked(image, start, out=tmp_path / "o.zarr", max_num_iter=3).compute()
    assert labels.dtype == np.uint64
    assert set(np.unique(labels).tolist()) == {0, int(big)}


# ---------------------------------------------------------------- 4. inputs are never outputs

def test_a_start_inside_the_output_folder_is_refused(tmp_path, nuclei, capsys):
    _images(tmp_path / "in", nuclei, n=2)
    (tmp_path / "out").mkdir()
    shutil.copy(tmp_path / "start.tif", tmp_path / "out" / "img0.tif")  # named like img0's output
    before = _snapshot(tmp_path)
    argv = ["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--start", str(tmp_path / "out" / "img0.tif"),
            "--scope", "all", "--workers", "1", "--overwrite", *QUICK]
    assert main(argv) == 1
    err = _one_line(capsys)
    assert "--start" in err and "img0.tif" in err and "never replaces" in err
    assert _snapshot(tmp_path) == before


def test_zarr_inputs_inside_the_output_store_are_refused(tmp_path, capsys):
    study = tmp_path / "study.zarr"
    study.mkdir()
    image, start = _zarr_volume(study, "ct")
    before = _snapshot(tmp_path)
    assert main(["segment", str(image), "--start", str(start), "-o", str(study), "--overwrite",
                 "--scope", "all", "--param", "model='mean'"]) == 1
    err = _one_line(capsys)
    assert "-o" in err and "contains" in err and "ct.zarr" in err
    assert _snapshot(tmp_path) == before


def test_segment_chunked_refuses_to_write_over_its_image(tmp_path):
    from napari_heatseg.core.ictm.chunked import segment_chunked

    image, start = _zarr_volume(tmp_path)
    before = _snapshot(tmp_path)
    with pytest.raises(OSError, match="out .*vol.zarr is the image file"):
        segment_chunked(str(image), str(start), out=image, overwrite=True, max_num_iter=2)
    assert _snapshot(tmp_path) == before


def test_a_link_to_an_input_in_the_output_folder_is_not_a_finished_output(tmp_path, nuclei, capsys):
    _images(tmp_path / "in", nuclei, n=2)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "img0.tif").symlink_to(tmp_path / "in" / "img0.tif")
    before = _snapshot(tmp_path / "in")
    assert main(_batch(tmp_path)) == 1
    err = _one_line(capsys)
    assert "is a link to the image file" in err and "img0.tif" in err
    assert _snapshot(tmp_path / "in") == before


def test_a_folder_named_like_an_image_is_reported(tmp_path, nuclei, capsys):
    _images(tmp_path / "in", nuclei, n=1)
    (tmp_path / "in" / "scan.tif").mkdir()  # not an image, yet named like one
    assert main(_batch(tmp_path)) == 1
    report = capsys.readouterr().out
    assert "done 1, skipped 0, failed 1" in report and "scan.tif" in report and "is a folder" in report


# ------------------------------------------------------------------- 5. name collisions

@pytest.mark.parametrize("names, clash", [(["a.jpg", "a.png"], "a.jpg and a.png would both write a.png"),
                                          (["b.tif", "b.tiff"], "b.tif and b.tiff would both write b.heatseg.json")])
def test_inputs_that_would_write_one_file_are_refused(tmp_path, nuclei, capsys, names, clash):
    import imageio.v3 as iio

    image, start = nuclei
    (tmp_path / "in").mkdir()
    for name in names:
        if name.endswith((".png", ".jpg")):
            iio.imwrite(tmp_path / "in" / name, (image / image.max() * 255).astype(np.uint8))
        else:
            tifffile.imwrite(tmp_path / "in" / name, image)
    tifffile.imwrite(tmp_path / "start.tif", start)
    assert main(_batch(tmp_path)) == 1
    assert clash in _one_line(capsys)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# -------------------------------------------------------------- 6. labels + sidecar as one unit

def test_labels_without_their_sidecar_are_redone(tmp_path, nuclei, monkeypatch, capsys):
    import napari_heatseg.core.batch as batch

    _images(tmp_path / "in", nuclei, n=2)
    real = batch.atomic_write

    def full_after_labels(path, write, **kwargs):  # the disk fills up between labels and sidecar
        labels = Path(path).with_name(Path(path).name.replace(".heatseg.json", ".tif"))
        if str(path).endswith(".heatseg.json") and labels.exists():
            raise ENOSPC
        return real(path, write, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(batch, "atomic_write", full_after_labels)
        assert main(_batch(tmp_path)) == 1
    assert "failed 2" in capsys.readouterr().out
    assert main(_batch(tmp_path)) == 0
    assert "done 2, skipped 0, failed 0" in capsys.readouterr().out  # redone, not "output exists"
    for i in range(2):
        assert json.loads((tmp_path / "out" / f"img{i}.heatseg.json").read_text())["complete"] is True


def test_a_file_heatseg_did_not_write_is_not_taken_for_an_output(tmp_path, nuclei, capsys):
    _images(tmp_path / "in", nuclei, n=2)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "img1.tif").write_bytes(b"the user's own file")
    assert main(_batch(tmp_path)) == 1
    report = capsys.readouterr().out
    assert "done 1, skipped 0, failed 1" in report and "pass --overwrite" in report
    assert (tmp_path / "out" / "img1.tif").read_bytes() == b"the user's own file"


def test_stale_parts_of_sidecars_and_png_outputs_are_removed(tmp_path, nuclei, capsys):
    import imageio.v3 as iio

    image, start = nuclei
    (tmp_path / "in").mkdir()
    iio.imwrite(tmp_path / "in" / "a.jpg", (image / image.max() * 255).astype(np.uint8))
    tifffile.imwrite(tmp_path / "start.tif", start)
    out = tmp_path / "out"
    out.mkdir()
    stale = [".a.png.k2x9q1zp.part.png", f".a.heatseg.json.{_dead_pid()}-q8d7.part.json"]
    for name in stale:
        (out / name).write_bytes(b"half")
    (out / ".notes.txt.part").write_bytes(b"not ours")  # no input writes notes.txt
    assert main(_batch(tmp_path)) == 0
    assert sorted(p.name for p in out.iterdir()) == [".notes.txt.part", "a.heatseg.json", "a.png"]
    assert "removed 2 stale temporary files" in capsys.readouterr().err


# ---------------------------------------------------------------------- 7. the folder lock

def test_a_second_run_on_a_folder_in_use_is_refused(tmp_path, nuclei, capsys):
    _images(tmp_path / "in", nuclei, n=2)
    out = tmp_path / "out"
    out.mkdir()
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / ".heatseg.lock").write_text(f"{owner.pid} {socket.gethostname()}\n")
        in_flight = out / f".img0.tif.{owner.pid}-abcd.part.tif"  # the first run's work in progress
        in_flight.write_bytes(b"being written")
        assert main(_batch(tmp_path)) == 1
        err = _one_line(capsys)
        assert f"another heatseg run (pid {owner.pid})" in err
        assert sorted(p.name for p in out.iterdir()) == [".heatseg.lock", in_flight.name]
    finally:
        owner.kill()
        owner.wait()
    (out / ".heatseg.lock").write_text(f"{_dead_pid()} {socket.gethostname()}\n")  # its owner was killed
    assert main(_batch(tmp_path)) == 0  # the stale lock is taken over
    assert not (out / ".heatseg.lock").exists() and (out / "img1.tif").exists()


def test_segment_removes_only_a_dead_writers_parts(tmp_path, nuclei):
    image, start = nuclei
    np.save(tmp_path / "img.npy", image)
    np.save(tmp_path / "start.npy", start)
    dead = tmp_path / f".o.tif.{_dead_pid()}-x1.part.tif"  # left by a killed `heatseg segment`
    live = tmp_path / f".o.tif.{os.getppid()}-x2.part.tif"  # another run, still writing
    for path in (dead, live):
        path.write_bytes(b"half")
    assert main(["segment", str(tmp_path / "img.npy"), "--start", str(tmp_path / "start.npy"),
                 "-o", str(tmp_path / "o.tif"), *QUICK]) == 0
    assert not dead.exists() and live.exists()


# --------------------------------------------------------- 8. OS errors are one clear line

@pytest.mark.parametrize("name, writer", [("o.tif", "tifffile.imwrite"), ("o.npy", "numpy.save"),
                                          ("o.png", "imageio.v3.imwrite"), ("o.nii.gz", "nibabel.save")])
def test_a_full_disk_is_one_line_for_every_format(tmp_path, nuclei, capsys, monkeypatch, name, writer):
    if name.endswith(".nii.gz"):
        pytest.importorskip("nibabel")
    image, start = nuclei
    np.save(tmp_path / "img.npy", image)
    np.save(tmp_path / "start.npy", start)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    module, _, function = writer.rpartition(".")
    monkeypatch.setattr(__import__(module, fromlist=[function]), function, full)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["segment", str(tmp_path / "img.npy"), "--start", str(tmp_path / "start.npy"),
                 "-o", str(tmp_path / name), *QUICK]) == 1
    err = _one_line(capsys)
    assert name in err and "No space left" in err and "free some space" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temporary file left


@pytest.mark.parametrize("command", ["batch", "demo"])
def test_an_unwritable_parent_folder_is_one_line(tmp_path, nuclei, capsys, monkeypatch, command):
    _images(tmp_path / "in", nuclei, n=1)
    target = tmp_path / "locked" / "out"
    target.parent.mkdir()
    real = Path.mkdir

    def denied(self, *args, **kwargs):  # root ignores chmod, so the refusal is simulated
        if self == target:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", denied)
    argv = _batch(tmp_path, out="locked/out") if command == "batch" else ["demo", "--out", str(target)]
    assert main(argv) == 1
    err = _one_line(capsys)
    assert ("-o" if command == "batch" else "--out") in err and "Permission denied" in err


def test_an_unreachable_scheduler_is_one_line(tmp_path, nuclei, capsys, monkeypatch):
    import napari_heatseg.core.batch as batch

    monkeypatch.setattr(batch, "CONNECT_TIMEOUT", "1s", raising=False)
    _images(tmp_path / "in", nuclei, n=2)
    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert main(_batch(tmp_path, "--scheduler", f"tcp://127.0.0.1:{port}")) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and f"dask scheduler at tcp://127.0.0.1:{port}" in errors[0], err


def test_a_number_out_of_range_is_one_line(tmp_path, nuclei, capsys, monkeypatch):
    import napari_heatseg
    import napari_heatseg.core.api as api

    image, start = nuclei
    np.save(tmp_path / "img.npy", image)
    np.save(tmp_path / "start.npy", start)
    argv = ["segment", str(tmp_path / "img.npy"), "--start", str(tmp_path / "start.npy"), "-o", str(tmp_path / "o.tif")]
    assert main(argv + ["--param", "tau=1e308"]) == 1  # refused by the parameter checks
    assert "tau" in _one_line(capsys)

    def overflow(*args, **kwargs):  # what reaches the CLI when a check misses one (tau=1e308 did, once)
        raise OverflowError(34, "Numerical result out of range")

    # the package's lazy name first: read after api.evolve is patched, it would be "restored" to the patch
    monkeypatch.setattr(napari_heatseg, "evolve", overflow, raising=False)
    monkeypatch.setattr(api, "evolve", overflow)
    assert main(argv + ["--param", "lam=1e29"]) == 1
    err = _one_line(capsys)
    assert "out of range" in err and "--param" in err
    assert not (tmp_path / "o.tif").exists()


def _heatseg(args, **kwargs):
    exe = shutil.which("heatseg")
    cmd = [exe] if exe else [sys.executable, "-m", "napari_heatseg.cli"]
    return subprocess.Popen([*cmd, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kwargs)


@pytest.mark.slow
def test_ctrl_c_with_workers_prints_only_the_clean_message(tmp_path, nuclei):
    _images(tmp_path / "in", nuclei, n=8)
    args = _batch(tmp_path, "--param", "coarse_to_fine=false")
    args[args.index("--workers") + 1] = "2"
    proc = _heatseg(args, start_new_session=True)  # its own process group, as a terminal's job
    out = tmp_path / "out"
    deadline = time.time() + 60
    while time.time() < deadline and not (out.is_dir() and list(out.glob("img*.tif"))) and proc.poll() is None:
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.skip("the batch finished before it could be interrupted (machine too fast)")
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl+C reaches every process of the group, workers included
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "interrupted; finished outputs are kept" in err
    assert not (out / ".heatseg.lock").exists()
