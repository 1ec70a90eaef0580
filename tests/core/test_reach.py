"""The object frontier (napari_heatseg.core.reach) and the evidence rule it shares with stacks."""

import numpy as np
import pytest
from scipy import ndimage

import napari_heatseg as hs
from napari_heatseg.core import evidence, reach
from napari_heatseg.core.morphology import depth


def _bar(length=28, brighter_from=None, seed=0):
    """A bright bar (12 x 12 across) along the last axis of a dark volume, marked at one end."""
    rng = np.random.default_rng(seed)  # result-bearing seed: one noise pattern
    levels = np.zeros((24, 24, 64))
    levels[6:18, 6:18, 4:4 + length] = 0.5
    if brighter_from is not None:
        levels[6:18, 6:18, 4 + brighter_from:4 + length] = 1.0
    image = ndimage.gaussian_filter(levels, 0.7) + 0.05 * rng.standard_normal(levels.shape)
    zz, yy, xx = np.mgrid[:24, :24, :64]
    mark = ((zz - 11.5) ** 2 + (yy - 11.5) ** 2 + (xx - 10) ** 2 <= 3**2).astype(np.uint8)
    return image, levels > 0, mark


def test_an_elongated_object_marked_at_one_end_is_found_whole():
    # the bar reaches 7.3 mark depths beyond the ball (within `reach`, 8); the first
    # frontier is 2: it must move out step by step while the bar still looks like the mark
    image, bar, mark = _bar()
    answer = hs.segment(image, mark, scope="object") > 0
    assert (answer & bar).sum() / (answer | bar).sum() > 0.85


def test_the_frontier_stops_where_the_object_turns_into_a_brighter_one():
    # the same bar, twice as bright from 20 voxels on: the frontier falls back before it
    # (before the frontier, the answer took the whole bar, bright part included)
    image, bar, mark = _bar(brighter_from=20)
    answer = hs.segment(image, mark, scope="object") > 0
    assert answer[:, :, 4:20].sum() > 0.8 * bar[:, :, 4:20].sum()  # the marked part is found
    assert answer[:, :, 28:].sum() == 0  # and nothing of the brighter part beyond the fall-back


def test_verdict_is_free_of_the_intensity_scale_and_offset():
    rng = np.random.default_rng(3)  # result-bearing seed
    image = rng.normal(0.2, 0.05, (40, 40, 1))
    image[10:30, 10:30] += 1.0
    inside = np.zeros((40, 40), bool)
    inside[10:30, 10:30] = True
    around = evidence.ring(inside, 3)
    for gain, offset in [(1.0, 0.0), (250.0, -1e4), (1e-3, 5.0)]:
        mean, towards = reference = evidence.contrast(gain * image + offset, inside, around)
        assert evidence.verdict(reference, reference) is None
        assert evidence.verdict((mean + 0.5 * towards, towards), reference) is None
        assert evidence.verdict((mean + 0.9 * towards, towards), reference) == "drifted"
        assert evidence.verdict((mean, 0.1 * towards), reference) == "faded"
        assert evidence.verdict((mean, 0.1 * towards), reference, min_contrast=-np.inf) is None


def test_a_mark_on_one_slice_gives_its_scale_in_the_plane():
    mark = np.zeros((9, 40, 40), bool)
    yy, xx = np.mgrid[:40, :40]
    mark[4] = (yy - 20) ** 2 + (xx - 20) ** 2 <= 8**2
    spacing = (0.3, 0.25, 0.25)  # thin slices: the disk is one slice (0.3) thick and 4 wide
    assert depth(mark, spacing) <= 0.3
    assert reach.mark_depth(mark, spacing) == pytest.approx(depth(mark[4], spacing[1:]))
    assert reach.mark_depth(mark, spacing) > 2.0
    ball = np.sum((np.indices((20, 20, 20)) - 10.0) ** 2, axis=0) <= 16
    assert reach.mark_depth(ball, (1.0, 1.0, 1.0)) == depth(ball, (1.0, 1.0, 1.0))
