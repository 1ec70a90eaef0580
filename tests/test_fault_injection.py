"""Fault injection: kill a batch and a chunked write at random moments, then check what is left.

Every output that exists after a kill must be complete (readable, its sidecar or completion
marker present, equal to a clean run's), every input byte-identical, and running the same
command again must finish the work. Six kills in all, each at a random moment of a real
run (a seeded generator, so a failure can be replayed), in about a minute.
"""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_heatseg.core.io import read_image
from napari_heatseg.samples import load_sample
from zarr_volumes import zarr_ball_volume

pytestmark = pytest.mark.slow

RNG = np.random.default_rng(19)  # the kill moments; change the seed to explore others
TIME_LIMIT = 60  # seconds per run; every run here takes a few


def _heatseg(*args):
    exe = shutil.which("heatseg")
    cmd = [exe] if exe else [sys.executable, "-m", "napari_heatseg.cli"]
    return [*cmd, *map(str, args)]


def _run(cmd):
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIME_LIMIT)
    return done, time.perf_counter() - t0


def _kill_after(cmd, delay, sig, ready=None):
    """Start ``cmd``, send ``sig`` ``delay`` seconds after ``ready`` exists (if it still runs); its exit status."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + TIME_LIMIT
    while ready is not None and not Path(ready).exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)  # the modules are loaded and the command has begun its work
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=TIME_LIMIT)
    assert "Traceback" not in err, err  # Ctrl+C prints one line, whenever it comes
    return proc.returncode


def _snapshot(*folders):
    return {str(p): p.read_bytes() for folder in folders for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def test_killed_batch_leaves_only_complete_outputs(tmp_path):
    sample = load_sample("nuclei2d")
    (tmp_path / "in").mkdir()
    for i in range(8):
        tifffile.imwrite(tmp_path / "in" / f"img{i}.tif", np.roll(sample["image"], 23 * i, axis=1))
    tifffile.imwrite(tmp_path / "start.tif", sample["start"])
    inputs = _snapshot(tmp_path / "in", tmp_path / "start.tif")

    def batch(out):
        return _heatseg("batch", tmp_path / "in", "-o", out, "--start", tmp_path / "start.tif", "--scope", "all",
                        "--workers", "1", "--param", "coarse_to_fine=false")

    clean, seconds = _run(batch(tmp_path / "clean"))
    assert clean.returncode == 0, clean.stderr
    expected = {p.name: read_image(p)[0] for p in (tmp_path / "clean").glob("img*.tif")}
    assert len(expected) == 8

    codes = []
    for trial, sig in enumerate([signal.SIGKILL, signal.SIGINT, signal.SIGKILL]):
        out = tmp_path / f"killed{trial}"
        code = _kill_after(batch(out), RNG.uniform(0.0, 0.7) * seconds, sig, ready=out)
        codes.append(code)
        for labels in out.glob("img*.tif"):  # whatever exists is whole and right
            np.testing.assert_array_equal(read_image(labels)[0], expected[labels.name])
        for sidecar in out.glob("*.heatseg.json"):
            record = json.loads(sidecar.read_text())
            if record["complete"]:
                assert (out / Path(record["output"]).name).is_file()
        resumed, _ = _run(batch(out))
        assert resumed.returncode == 0, (code, resumed.stderr)
        assert sorted(p.name for p in out.glob("img*.tif")) == sorted(expected)
        for name, labels in expected.items():
            np.testing.assert_array_equal(read_image(out / name)[0], labels)
            assert json.loads((out / name.replace(".tif", ".heatseg.json")).read_text())["complete"] is True
        assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no part, no lock left
    assert _snapshot(tmp_path / "in", tmp_path / "start.tif") == inputs
    print("exit codes of the killed batches:", codes)
    assert any(code in (-signal.SIGKILL, 130) for code in codes), codes  # the kills did land mid-run


def test_killed_chunked_write_never_leaves_a_cut_store(tmp_path):
    zarr = pytest.importorskip("zarr")
    from napari_heatseg.core.outputs import zarr_is_complete

    zarr_ball_volume(tmp_path / "image.zarr", tmp_path / "start.zarr", (24, 48, 48), 10,
                     ((2, 2), (2, 2), (2, 2)), (12, 24, 24), seed=7)
    inputs = _snapshot(tmp_path / "image.zarr", tmp_path / "start.zarr")

    def segment(out, iterations, *extra):  # the phases' work folder in tmp_path: a killed run leaves it there
        return _heatseg("segment", tmp_path / "image.zarr", "--start", tmp_path / "start.zarr", "-o", out,
                        "--scope", "all", "--param", "model='mean'", "--param", f"max_num_iter={iterations}",
                        "--param", f"workdir='{tmp_path / 'work'}'", *extra)

    results = {}
    for iterations in (1, 8):  # an earlier result, and the one the killed runs make
        done, seconds = _run(segment(tmp_path / f"clean{iterations}.zarr", iterations))
        assert done.returncode == 0, done.stderr
        results[iterations] = zarr.open_array(str(tmp_path / f"clean{iterations}.zarr"), mode="r")[:]
    assert not np.array_equal(results[1], results[8])  # so that the two can be told apart

    codes = []
    for trial in range(3):  # a fresh output, then two --overwrite runs over the earlier result
        out = tmp_path / f"killed{trial}.zarr"
        extra = ()
        if trial:
            shutil.copytree(tmp_path / "clean1.zarr", out)
            extra = ("--overwrite",)
        codes.append(_kill_after(segment(out, 8, *extra), RNG.uniform(0.4, 1.0) * seconds, signal.SIGKILL))
        if out.exists():
            assert zarr_is_complete(out)
            found = zarr.open_array(str(out), mode="r")[:]
            assert any(np.array_equal(found, r) for r in ([results[8]] + ([results[1]] if trial else [])))
        else:
            assert trial == 0  # an overwrite never leaves no result
        resumed, _ = _run(segment(out, 8, "--overwrite"))
        assert resumed.returncode == 0, resumed.stderr
        np.testing.assert_array_equal(zarr.open_array(str(out), mode="r")[:], results[8])
        leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(f".{out.name}.")]
        assert not leftovers  # the killed run's temporary store went with the next write
    assert _snapshot(tmp_path / "image.zarr", tmp_path / "start.zarr") == inputs
    print("exit codes of the killed writes:", codes)
    assert -signal.SIGKILL in codes, codes  # the kills did land mid-run
