"""Metrics against values computed by hand, including anisotropic spacing and empty masks."""

import numpy as np
import pytest

from napari_heatseg.core import metrics


def _blocks():
    truth = np.zeros((4, 6), np.uint8)
    truth[1:3, 1:3] = 1  # 4 pixels
    test = np.zeros((4, 6), np.uint8)
    test[1:3, 1:4] = 1  # 6 pixels, 4 shared
    return truth, test


def test_dice_and_iou_by_hand():
    truth, test = _blocks()
    assert metrics.iou(truth, test) == pytest.approx(4 / 6)
    assert metrics.dice(truth, test) == pytest.approx(2 * 4 / (4 + 6))


def test_ignore_value_leaves_pixels_out():
    truth, test = _blocks()
    truth[1, 3] = 255  # one of the test-only pixels is "unknown" in the reference
    assert metrics.iou(truth, test, ignore=255) == pytest.approx(4 / 5)
    assert metrics.dice(truth, test, ignore=255) == pytest.approx(2 * 4 / (4 + 5))
    # without `ignore`, 255 is foreground in the reference
    assert metrics.iou(truth, test) == pytest.approx(5 / 6)


def test_surface_distances_with_anisotropic_spacing():
    truth = np.zeros((3, 6), bool)
    truth[1, 1] = True
    test = truth.copy()
    test[1, 4] = True  # 3 columns away: 3 * 0.5 = 1.5 physical units
    spacing = (2.0, 0.5)
    # directed distances: truth -> test [0]; test -> truth [0, 1.5]
    assert metrics.hausdorff95(truth, test, spacing=spacing) == pytest.approx(np.percentile([0, 1.5], 95))
    assert metrics.mean_surface_distance(truth, test, spacing=spacing) == pytest.approx(1.5 / 3)
    # the same offset along the coarse axis costs 4 times more
    down = np.zeros((6, 3), bool)
    down[1, 1] = True
    other = np.zeros((6, 3), bool)
    other[4, 1] = True
    assert metrics.hausdorff95(down, other, spacing=(2.0, 0.5)) == pytest.approx(6.0)
    assert metrics.mean_surface_distance(down, other, spacing=(2.0, 0.5)) == pytest.approx(6.0)


def test_surface_of_a_3d_box_is_its_outer_shell():
    truth = np.zeros((5, 7, 7), bool)
    truth[1:4, 1:6, 1:6] = True
    test = np.zeros_like(truth)
    test[1:4, 1:6, 2:6] = True  # one face moved in by one voxel of 0.3
    hd = metrics.hausdorff95(truth, test, spacing=(5.0, 1.0, 0.3))
    assert hd == pytest.approx(0.3)
    assert metrics.mean_surface_distance(truth, truth, spacing=(5.0, 1.0, 0.3)) == 0.0


def test_volume_in_physical_units():
    mask = np.zeros((3, 4, 4), np.uint8)
    mask[1, :2, :5] = 7  # 8 voxels
    assert metrics.volume(mask, spacing=(6.5, 0.78125, 0.78125)) == pytest.approx(8 * 6.5 * 0.78125**2)
    assert metrics.volume(mask) == 8.0


def test_empty_masks():
    empty = np.zeros((5, 5), np.uint8)
    full = empty.copy()
    full[2, 2] = 1
    assert metrics.dice(empty, empty) == 1.0
    assert metrics.iou(empty, empty) == 1.0
    assert metrics.hausdorff95(empty, empty) == 0.0
    assert metrics.mean_surface_distance(empty, empty) == 0.0
    assert metrics.dice(empty, full) == 0.0
    assert metrics.iou(full, empty) == 0.0
    assert metrics.hausdorff95(empty, full) == np.inf
    assert metrics.mean_surface_distance(full, empty) == np.inf


def test_compare_rows_per_label_and_table():
    reference = np.zeros((6, 6), np.uint16)
    reference[:2, :2] = 3
    reference[4:, 4:] = 5
    test = np.zeros_like(reference)
    test[:2, :3] = 3
    test[0, 5] = 9  # a label only in the test
    rows = metrics.compare(reference, test, spacing=(1.0, 2.0))
    by_label = {row["label"]: row for row in rows}
    assert sorted(by_label) == [3, 5, 9]
    assert by_label[3]["iou"] == pytest.approx(4 / 6)
    assert by_label[3]["size_reference"] == pytest.approx(4 * 2.0)
    assert by_label[3]["size_test"] == pytest.approx(6 * 2.0)
    assert by_label[5]["iou"] == 0.0 and by_label[5]["hd95"] == np.inf
    assert by_label[9]["size_reference"] == 0.0
    table = metrics.format_table(rows)
    lines = table.splitlines()
    assert len(lines) == 2 + 3
    assert lines[2].startswith("| 3 | 0.800 | 0.667 |")


def test_compare_ignores_the_band():
    reference = np.array([[0, 1, 1, 255]], np.uint8)
    test = np.array([[0, 1, 1, 1]], np.uint8)
    rows = metrics.compare(reference, test, ignore=255)
    assert [row["label"] for row in rows] == [1]
    assert rows[0]["iou"] == 1.0


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="same image"):
        metrics.iou(np.zeros((3, 3)), np.zeros((3, 4)))


# ---------------------------------------------------------------- instance metrics


def test_instance_scores_by_hand():
    truth = np.array([[1, 1, 0, 2, 2]])
    test = np.array([[5, 5, 0, 0, 7]])  # object 1 found exactly, object 2 half (IoU 0.5, not above)
    scores = metrics.instance_scores(truth, test)
    assert (scores["tp"], scores["fp"], scores["fn"]) == (1, 1, 1)
    assert scores["precision"] == scores["recall"] == scores["f1"] == pytest.approx(0.5)
    assert scores["mean_ap"] == pytest.approx(1 / 3)  # TP / (TP + FP + FN) at every threshold
    assert scores["count_error"] == 0


def test_instance_scores_threshold_is_strict_and_ap_averages_thresholds():
    truth = np.zeros((4, 4), np.uint8)
    truth[:2, :2] = 1  # 4 pixels
    test = np.zeros((4, 4), np.uint16)
    test[:2, :2] = 9
    test[1, 1] = 0  # 3 of them: IoU 0.75
    scores = metrics.instance_scores(truth, test)
    assert scores["f1"] == 1.0
    # matched at 0.5, 0.55, 0.6, 0.65, 0.7; not at 0.75 (IoU must exceed it) and above
    assert scores["ap"] == (1.0,) * 5 + (0.0,) * 5
    assert scores["mean_ap"] == pytest.approx(0.5)


def test_a_split_object_is_two_false_positives_and_a_miss():
    truth = np.zeros((2, 4), np.int32)
    truth[:, :] = 3
    test = np.array([[1, 1, 2, 2], [1, 1, 2, 2]])  # each half has IoU 0.5
    scores = metrics.instance_scores(truth, test)
    assert (scores["tp"], scores["fp"], scores["fn"], scores["count_error"]) == (0, 2, 1, 1)
    assert scores["f1"] == 0.0 and scores["mean_ap"] == 0.0


def test_instance_scores_ignore_label_values_and_accept_masks():
    truth = np.array([[1, 1, 0, 2, 2, 0, 3]])
    renumbered = np.array([[-4, -4, 0, 70000, 70000, 0, 2**40]], np.int64)
    assert metrics.instance_scores(truth, renumbered)["f1"] == 1.0
    assert metrics.instance_scores(truth > 0, truth > 0)["mean_ap"] == 1.0  # one object each


def test_instance_scores_with_empty_images():
    empty = np.zeros((3, 3), np.uint8)
    one = empty.copy()
    one[1, 1] = 1
    both = metrics.instance_scores(empty, empty)
    assert both["f1"] == both["precision"] == both["recall"] == both["mean_ap"] == 1.0
    missed = metrics.instance_scores(one, empty)
    assert missed["f1"] == missed["recall"] == missed["mean_ap"] == 0.0 and missed["count_error"] == -1
    extra = metrics.instance_scores(empty, one)
    assert extra["f1"] == extra["precision"] == 0.0 and extra["fp"] == 1


def test_instance_scores_on_a_thousand_objects():
    truth = np.zeros((40, 2500), np.uint16)
    test = np.zeros_like(truth)
    for k in range(1000):  # 4x4 squares; the test ones shifted by one column: IoU 12 / 20
        row, col = 8 * (k // 250), 10 * (k % 250)
        truth[row:row + 4, col:col + 4] = k + 1
        test[row:row + 4, col + 1:col + 5] = 1000 - k
    scores = metrics.instance_scores(truth, test)
    assert scores["tp"] == 1000 and scores["f1"] == 1.0
    assert scores["mean_ap"] == pytest.approx(0.2)  # matched at 0.5 and 0.55 only


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"threshold": 0.3}, ValueError, r"\[0.5, 1\)"),
    ({"thresholds": (0.5, 1.0)}, ValueError, r"\[0.5, 1\)"),
    ({"image_test": np.zeros((2, 3), np.float32)}, TypeError, "integer instance labels"),
    ({"image_test": np.zeros((3, 2), np.uint8)}, ValueError, "same image"),
])
def test_instance_scores_bad_inputs(kwargs, error, match):
    arguments = {"image_true": np.zeros((2, 3), np.uint8), "image_test": np.zeros((2, 3), np.uint8)}
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        metrics.instance_scores(**arguments)
