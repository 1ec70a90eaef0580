"""instances: touching objects split, single objects kept whole, ids, spacing, min_size, errors."""

import numpy as np
import pytest

from dev_data import load_item
from napari_heatseg.core import metrics
from napari_heatseg.core.instances import instances


def _disc(shape, centre, radius, spacing=(1.0, 1.0, 1.0)):
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum(((g - c) * h) ** 2 for g, c, h in zip(grid, centre, spacing)) <= radius**2


def _two_touching_discs():
    """Two discs of radius 10 whose centres are 18 apart (they overlap in a neck)."""
    shape = (40, 64)
    left, right = _disc(shape, (20, 20), 10), _disc(shape, (20, 38), 10)
    return left | right, left & ~right, right & ~left


def test_two_touching_discs_are_split_along_the_neck():
    mask, left_only, right_only = _two_touching_discs()
    mark = _disc(mask.shape, (20, 20), 5)  # a ball of half the depth, as the standard start
    labels = instances(mask, marks=mark)
    assert labels.max() == 2
    assert np.array_equal(labels > 0, mask)  # splitting does not change the foreground
    # each disc's own part lies in one object, the two objects differ
    left_ids, right_ids = np.unique(labels[left_only]), np.unique(labels[right_only])
    assert left_ids.size == 1 and right_ids.size == 1 and left_ids[0] != right_ids[0]


@pytest.mark.parametrize("ndim", [2, 3])
def test_wide_touching_objects_split_and_keep_the_foreground(ndim):
    shape, spacing = ((90, 150), (1.0, 1.0)) if ndim == 2 else ((30, 90, 150), (3.0, 1.0, 1.0))
    centre = (45,) if ndim == 2 else (15, 45)
    left = _disc(shape, (*centre, 40), 30, spacing)  # radius 30: sigma 9 voxels
    right = _disc(shape, (*centre, 94), 30, spacing)
    mask = left | right
    labels = instances(mask, spacing=spacing, marks=_disc(shape, (*centre, 40), 15, spacing))
    assert labels.max() == 2
    assert np.array_equal(labels > 0, mask)
    assert np.unique(labels[left & ~right]).size == 1 and np.unique(labels[right & ~left]).size == 1


def test_two_touching_discs_split_without_marks():
    mask, _, _ = _two_touching_discs()
    assert instances(mask).max() == 2


@pytest.mark.parametrize("shape_name", ["disc", "ellipse"])
def test_a_single_disc_or_ellipse_stays_one_object(shape_name):
    yy, xx = np.mgrid[:60, :80]
    if shape_name == "disc":
        mask = (yy - 30) ** 2 + (xx - 40) ** 2 <= 12**2
    else:  # 2.5 times longer than wide
        mask = ((yy - 30) / 10.0) ** 2 + ((xx - 40) / 25.0) ** 2 <= 1
    mark = _disc(mask.shape, (30, 40), 5)
    for marks in (mark, None):
        labels = instances(mask, marks=marks)
        assert labels.max() == 1
        assert np.array_equal(labels > 0, mask)


def test_ids_are_contiguous_in_the_smallest_unsigned_dtype():
    mask = np.zeros((60, 1200), bool)
    for k in range(300):  # 300 separate small squares: ids 1..300 need uint16
        mask[10 + 20 * (k % 2): 14 + 20 * (k % 2), 4 * k: 4 * k + 3] = True
    labels = instances(mask, min_size=0)
    assert labels.dtype == np.uint16
    assert np.array_equal(np.unique(labels), np.arange(301))
    few = instances(_two_touching_discs()[0])
    assert few.dtype == np.uint8 and np.array_equal(np.unique(few), [0, 1, 2])


def test_label_values_are_not_kept_only_the_foreground():
    mask, _, _ = _two_touching_discs()
    classes = np.where(mask, 1, 0).astype(np.int32)
    classes[(classes > 0) & (np.arange(64) < 24)] = 3  # an intensity class, as scope="all" gives
    labels = instances(classes)
    assert labels.max() == 2 and np.array_equal(labels > 0, mask)


def test_3d_touching_balls_with_thick_slices_split_in_physical_units():
    spacing = (4.0, 1.0, 1.0)  # slices four times thicker than the pixels
    shape = (12, 40, 64)
    left = _disc(shape, (6, 20, 20), 10, spacing)
    right = _disc(shape, (6, 20, 38), 10, spacing)
    mask = left | right
    mark = _disc(shape, (6, 20, 20), 5, spacing)
    labels = instances(mask, spacing=spacing, marks=mark)
    assert labels.max() == 2
    assert np.array_equal(labels > 0, mask)
    assert np.unique(labels[left & ~right]).size == 1 and np.unique(labels[right & ~left]).size == 1
    # the same two balls split along the z axis too: the scale is physical, not voxels
    top = _disc((30, 40, 40), (9, 20, 20), 10, (1.0, 1.0, 1.0))
    bottom = _disc((30, 40, 40), (9 + 18, 20, 20), 10, (1.0, 1.0, 1.0))
    stacked = top | bottom
    thick = stacked[::3]  # every 3rd plane: spacing 3 along z
    assert instances(thick, spacing=(3.0, 1.0, 1.0)).max() == 2


def test_min_size_drops_specks_and_merges_fragments():
    mask, _, _ = _two_touching_discs()
    specked = mask.copy()
    specked[2, 60] = specked[37, 2] = True  # isolated one-pixel specks
    labels = instances(specked)
    assert labels.max() == 2 and labels[2, 60] == 0 and labels[37, 2] == 0
    kept = instances(specked, min_size=0)
    assert kept.max() == 4
    # a tiny bump on a disc would be its own object without min_size
    disc = _disc((40, 40), (20, 20), 10)
    bump = disc.copy()
    bump[19:22, 30:33] = True
    bump[20, 33] = True
    merged = instances(bump, radius=10.0, min_distance=0.1, min_size=50.0)
    assert merged.max() == 1 and np.array_equal(merged > 0, bump)


def test_empty_mask_warns_and_returns_zeros():
    with pytest.warns(UserWarning, match="no foreground"):
        labels = instances(np.zeros((8, 9), bool))
    assert labels.shape == (8, 9) and labels.dtype == np.uint8 and not labels.any()


def test_inputs_are_not_modified():
    mask, _, _ = _two_touching_discs()
    mark = _disc(mask.shape, (20, 20), 5)
    before = mask.copy(), mark.copy()
    instances(mask, marks=mark)
    assert np.array_equal(mask, before[0]) and np.array_equal(mark, before[1])


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"labels_or_mask": np.zeros((5, 5), np.float32)}, TypeError, "boolean mask or integer"),
    ({"labels_or_mask": np.zeros((2, 3, 4, 5), bool)}, ValueError, "2D .* or 3D"),
    ({"labels_or_mask": "mask.tif"}, TypeError, "path or string"),
    ({"spacing": (1.0, 2.0, 3.0)}, ValueError, "one number per spatial axis"),
    ({"spacing": (1.0, -2.0)}, ValueError, "finite and positive"),
    ({"marks": np.zeros((4, 4), bool)}, ValueError, "has shape"),
    ({"marks": np.zeros((10, 10), bool)}, ValueError, "no nonzero voxel"),
    ({"marks": np.full((10, 10), 0.5)}, TypeError, "marks"),
    ({"radius": -1.0}, ValueError, "radius"),
    ({"min_size": float("nan")}, ValueError, "min_size"),
    ({"smoothing": 0}, ValueError, "smoothing"),
])
def test_bad_inputs_get_clear_errors(kwargs, error, match):
    arguments = {"labels_or_mask": _disc((10, 10), (5, 5), 3)} | kwargs
    with pytest.raises(error, match=match):
        instances(arguments.pop("labels_or_mask"), **arguments)


DSB_ITEMS = ("0a849e0eb15faa8a", "4be73d68f4338691", "7f4cbe0b36b5d094", "d6eb7ce7723e2f6d")


def test_dsb2018_nuclei_f1_stays_above_the_measured_floor():
    """F1@0.5 of scope="all" + instances on four DSB images (measured 0.820 on 2026-12-01)."""
    import napari_heatseg as hs
    from benchmarks.common import standard_start

    scores = []
    for item in DSB_ITEMS:
        image, mask, spacing = load_item("nuclei2d_dsb2018", item)
        start, _ = standard_start("nuclei", mask, spacing)
        foreground = hs.segment(image, start, scope="all", spacing=spacing) > 0
        labels = instances(foreground, spacing=spacing, marks=start)
        scores.append(metrics.instance_scores(mask, labels)["f1"])
    assert np.mean(scores) > 0.78


def test_segment_with_instances_gives_one_id_per_touching_disk():
    import napari_heatseg as hs

    yy, xx = np.mgrid[:80, :120]
    disks = ((yy - 40) ** 2 + (xx - 40) ** 2 < 20**2) | ((yy - 40) ** 2 + (xx - 78) ** 2 < 20**2)
    image = disks + np.random.default_rng(0).normal(0, 0.1, disks.shape)
    start = ((yy - 40) ** 2 + (xx - 40) ** 2 < 10**2).astype(np.uint8)
    labels = hs.segment(image, start, scope="all", instances=True)
    assert labels.max() == 2 and set(np.unique(labels)) == {0, 1, 2}
    np.testing.assert_array_equal(labels > 0, hs.segment(image, start, scope="all") > 0)
    last = list(hs.evolve(image, start, scope="all", instances=True))[-1]
    np.testing.assert_array_equal(last.labels, labels)
