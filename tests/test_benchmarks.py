"""Smoke runs of the benchmark harness on tiny inputs, and the standard starts it builds."""

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the project, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import accuracy, bench_models, bench_speed, common, generalisation  # noqa: E402


def _need(name):
    if name not in common.available_sets():
        pytest.skip(f"development set {name} not found in {common.DATA}")


def test_nuclei_start_is_three_balls_inside_the_largest_nuclei():
    mask = np.zeros((60, 60), np.uint16)
    yy, xx = np.mgrid[:60, :60]
    for value, (cy, cx, r) in enumerate([(15, 15, 10), (15, 45, 8), (45, 15, 6), (45, 45, 4)], 1):
        mask[(yy - cy) ** 2 + (xx - cx) ** 2 <= r**2] = value
    start, target = common.standard_start("nuclei", mask)
    np.testing.assert_array_equal(target, mask > 0)
    assert not start[mask == 4].any()  # only the 3 largest
    for value, r in ((1, 10), (2, 8), (3, 6)):
        ball = start.astype(bool) & (mask == value)
        depth = ndi.distance_transform_edt(mask == value).max()
        radius = np.sqrt(ball.sum() / np.pi)
        assert abs(radius - depth / 2) <= 1.0
    assert not start[mask == 0].any()


def test_ball_is_round_in_physical_units():
    mask = np.zeros((20, 60, 60), np.uint8)
    mask[2:18, 5:55, 5:55] = 1  # 16 slices x 50 x 50 voxels; with spacing (5, 1, 1): 80 x 50 x 50
    start, _ = common.standard_start("ball", mask, spacing=(5.0, 1.0, 1.0))
    zs, ys, _ = np.nonzero(start)
    depth = 25.0  # half of the 50 voxel side, the thinnest physical extent
    assert (ys.max() - ys.min() + 1) == pytest.approx(depth, abs=2)
    assert 5.0 * (zs.max() - zs.min() + 1) == pytest.approx(depth, abs=6)


def test_box_start_and_ignored_band_score():
    mask = np.zeros((30, 30), np.uint8)
    mask[10:20, 5:25] = 1
    mask[9, 5:25] = 255
    start, _ = common.standard_start("box", mask)
    assert start.sum() == 10 * 20 and start[10:20, 5:25].all()
    item = common.Item("x", "y", None, None, None, start, "inside", mask, 255)
    assert common.score(item, start) == 1.0  # the 255 band is not counted


def test_accuracy_cli_on_one_tiny_item(tmp_path, capsys):
    _need("nuclei2d_dsb2018")
    out = tmp_path / "acc.md"
    methods = "heat,threshold_otsu,heatdiff,grabcut"
    results = accuracy.main(["--sets", "nuclei2d_dsb2018", "--limit", "1", "--methods", methods,
                             "--verbose", "--output", str(out)])
    row = results["nuclei2d_dsb2018"]
    assert row["grabcut"] == "colour 2D only"
    assert 0.8 <= row["threshold_otsu"][0] <= 1.0  # Otsu on a clean fluorescence image
    text = out.read_text()
    assert "| threshold_otsu |" in text and "Machine:" in text
    printed = capsys.readouterr().out
    assert "nuclei2d_dsb2018/0114f484a16c152b heat: IoU" in printed


def test_accuracy_grabcut_and_heatdiff_peers_run_on_a_photo():
    _need("natural2d_grabcut")
    item = common.load_set("natural2d_grabcut", limit=1)[0]
    assert common.score(item, accuracy.run_method("grabcut", item)) > 0.7
    if common.heatdiff_segmenter() is None:
        pytest.skip("heatdiff not installed")
    labels = accuracy.run_method("heatdiff", item)
    assert labels.shape == item.start.shape


def test_speed_benchmark_runs_at_a_tiny_size(capsys):
    table = bench_speed.main(["--sizes", "64", "--repeat", "1", "--no-3d"])
    (label, results), = table
    assert label == "64²"
    assert {"heat", "chan_vese", "morph_chan_vese"} <= set(results)
    for seconds, iterations in results.values():
        assert seconds > 0 and iterations >= 1
    assert "ours / peer" in capsys.readouterr().out


def test_model_benchmark_times_both_models_on_real_nuclei(capsys):
    _need("nuclei2d_dsb2018")
    bench_models.main(["--sets", "nuclei2d_dsb2018", "--limit", "2", "--repeat", "1"])
    printed = capsys.readouterr().out
    row = next(line for line in printed.splitlines() if line.startswith("| nuclei2d_dsb2018 (2)"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    gaussian_iou, mean_iou = float(cells[3]), float(cells[6])
    assert gaussian_iou > 0.7 and 0 <= mean_iou <= 1  # the default model segments the nuclei
    assert float(cells[7].split()[0]) > 0  # a ratio of two measured times


def test_leave_one_out_scores_each_item_at_the_others_best_factor():
    scores = np.array([[0.9, 0.1],   # item 0 alone prefers factor 0
                       [0.2, 0.8],
                       [0.3, 0.7]])
    # item 0: others prefer factor 1 -> 0.1; item 1: others' means (0.6, 0.4) -> factor 0 -> 0.2;
    # item 2: others' means (0.55, 0.45) -> factor 0 -> 0.3
    assert generalisation.leave_one_out(scores) == pytest.approx((0.1 + 0.2 + 0.3) / 3)


def test_generalisation_benchmark_on_real_nuclei(capsys):
    _need("nuclei2d_dsb2018")
    generalisation.main(["--sets", "nuclei2d_dsb2018", "--limit", "3"])
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| nuclei2d_dsb2018 (3)"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    at_default, loo = float(cells[2]), float(cells[3])
    per_factor = [float(v) for v in cells[6].split("/")]
    assert at_default == per_factor[generalisation.FACTORS.index(1.0)]
    assert at_default > 0.7 and min(per_factor) <= loo <= max(per_factor)
