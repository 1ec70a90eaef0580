"""The NoC benchmark: the click simulator, the NoC arithmetic and the harness with its peers."""

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the project, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import common, noc  # noqa: E402
from benchmarks.clicker import ClickMarks, click_region, first_reaching, next_click  # noqa: E402
from benchmarks.peers_interactive import PEERS  # noqa: E402


def _disk(shape, centre, radius):
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def _item(colour=False, size=48):
    """A bright disk on a noisy dark background, with its box as the start."""
    rng = np.random.default_rng(0)  # result-bearing: the peers must reach 85 % on this image
    truth = _disk((size, size), (size // 2, size // 2 + 3), size // 4)
    grey = np.where(truth, 170.0, 60.0) + rng.normal(0, 12, truth.shape)
    image = np.clip(grey, 0, 255).astype(np.uint8)
    if colour:
        image = np.stack([image, image // 2, 255 - image], axis=-1)
    target = truth.astype(np.uint8)
    box, _ = common.standard_start("box", target)
    return common.Item("synthetic", "disk", image, -1 if colour else None, None, box, "inside",
                       target, None)


def test_first_click_on_a_disk_is_positive_at_its_centre():
    truth = _disk((41, 51), (20, 30), 8)
    click = next_click(truth, np.zeros(truth.shape, bool))
    assert click.positive and click.position == (20, 30)


def test_false_positive_blob_gets_a_negative_click_inside_it():
    truth = _disk((60, 60), (20, 20), 8)
    blob = _disk((60, 60), (42, 44), 6)
    click = next_click(truth, truth | blob)
    assert not click.positive and click.position == (42, 44)


def test_the_image_border_counts_as_a_border_of_the_error():
    truth = np.zeros((40, 40), bool)
    truth[:21, :21] = True  # in the corner: without the image border the click would go there
    click = next_click(truth, np.zeros(truth.shape, bool))
    assert click.positive and click.position == (10, 10)


def test_ignored_band_is_ignored():
    truth = _disk((60, 60), (10, 10), 3)
    prediction = np.zeros(truth.shape, bool)
    prediction[30:55, 30:55] = True  # a deep false positive ...
    assert not next_click(truth, prediction).positive
    ignore = np.zeros(truth.shape, bool)
    ignore[25:, 25:] = True  # ... that lies in the unknown band
    click = next_click(truth, prediction, ignore=ignore)
    assert click.positive and click.position == (10, 10)


def test_clicked_voxels_are_not_clicked_again_and_marks_never_overlap():
    truth = _disk((41, 41), (20, 20), 12)
    marks = ClickMarks(truth.shape)
    first = next_click(truth, np.zeros(truth.shape, bool))
    marks.add(first)
    second = next_click(truth, np.zeros(truth.shape, bool), clicked=marks.clicked)
    assert second.positive and not marks.clicked[second.position]
    assert np.hypot(*np.subtract(second.position, first.position)) > 5
    marks.add(type(first)((first.position[0], first.position[1] + 4), positive=False))
    assert not (marks.positive & marks.negative).any()  # the newer negative disk took over
    assert marks.negative[first.position] and marks.positive.any()
    assert next_click(truth, truth | marks.negative, clicked=marks.clicked) is None


def test_click_is_a_disk_of_radius_5_and_a_physically_round_ball_in_3d():
    disk = click_region((30, 30), (15, 15))
    assert disk.sum() == 81 and disk[15, 10] and not disk[15, 9]
    ball = click_region((20, 40, 40), (10, 20, 20), spacing=(2.0, 0.5, 0.5))
    zs, ys, _ = np.nonzero(ball)
    # radius 5 finest voxels = 2.5 units: 5 voxels each side in y, 1 slice each side in z
    assert (ys.min(), ys.max()) == (15, 25) and (zs.min(), zs.max()) == (9, 11)


def test_noc_is_the_first_click_reaching_the_threshold_or_the_maximum():
    ious = [0.40, 0.86, 0.84, 0.91, 0.95]
    assert first_reaching(ious, 0.85, 20) == 2
    assert first_reaching(ious, 0.90, 20) == 4
    assert first_reaching(ious, 0.99, 20) == 20
    assert first_reaching([0.5] * 20, 0.90, 20) == 20
    assert noc.Trace(ious, [0.1] * 5).lowered() == 1


@pytest.mark.parametrize("method", list(PEERS))
def test_every_peer_keeps_the_clicks_fixed(method):
    item = _item(colour=True)
    positive = _disk(item.start.shape, (5, 5), 3)  # in the background: forced to object
    negative = _disk(item.start.shape, (24, 27), 3)  # in the object: forced to background
    for box in (None, item.start > 0):
        labels = PEERS[method](item)(positive=positive, negative=negative, box=box, previous=None)
        assert labels.dtype == np.uint8 and labels.shape == positive.shape
        assert labels[positive].all() and not labels[negative].any()


@pytest.mark.parametrize("colour", [False, True])
def test_harness_runs_the_peers_on_a_synthetic_disk(colour):
    item = _item(colour=colour)
    for method in PEERS:
        clicks = noc.run_clicks(noc.predictor(method, item), item, max_clicks=6)
        box = noc.run_box(noc.predictor(method, item), item, clicks=2)
        assert len(clicks.ious) == 6 and len(box.ious) == 3
        assert first_reaching(clicks.ious, 0.85, 6) < 6, (method, clicks.ious)
        assert max(box.ious) >= 0.85, (method, box.ious)
    results = {"clicks": {"synthetic": {"graphcut": [clicks]}}, "box": {"synthetic": {"graphcut": [box]}}}
    text = noc.report(results, max_clicks=6)
    assert "| synthetic (1) | graphcut |" in text and "RITM 1.5" in text


def test_heat_without_the_click_api_is_reported_not_faked(monkeypatch):
    def refuse(*args, seeds=None, **kwargs):
        if seeds is not None:
            raise TypeError("method 'heat' has no parameter 'seeds'")
        return np.zeros(np.shape(args[1]), np.uint8)

    monkeypatch.setattr(noc.hs, "segment", refuse)
    monkeypatch.setattr(noc, "load_items", lambda name, limit=None: [_item()])
    results = noc.evaluate(["synthetic"], ["heat", "graphcut"], protocols=("clicks",), max_clicks=3)
    row = results["clicks"]["synthetic"]
    assert row["heat"] == "not available: method 'heat' has no parameter 'seeds'"
    assert len(row["graphcut"]) == 1 and len(row["graphcut"][0].ious) == 3
    assert "not available: method 'heat'" in noc.report(results, max_clicks=3)


def test_heat_is_called_with_the_clicks_as_seeds_background_and_initial(monkeypatch):
    calls = []

    def record(image, start, **kwargs):
        calls.append((np.array(start), kwargs))
        seeds = kwargs.get("seeds")
        return (seeds > 0).astype(np.uint8) if seeds is not None else np.array(start, np.uint8)

    monkeypatch.setattr(noc.hs, "segment", record)
    item = _item()
    noc.run_clicks(noc.predictor("heat", item), item, max_clicks=2)
    (start, first), (_, second) = calls
    assert not start.any() and first["scope"] == "object" and first["initial"] is None
    assert first["seeds"].dtype == np.uint8 and set(np.unique(first["seeds"])) == {0, 1}
    assert first["background"].dtype == bool and not first["background"].any()
    np.testing.assert_array_equal(second["initial"], first["seeds"])  # the last result
    calls.clear()
    noc.run_box(noc.predictor("heat", item), item, clicks=1)
    (box_start, box_call), (_, correction) = calls
    np.testing.assert_array_equal(box_start, item.start)
    assert box_call == {"scope": "inside", "channel_axis": None, "spacing": None}
    assert correction["scope"] == "inside" and correction["initial"] is not None
