"""Corrections: seeds, background marks and a warm start (issue 13's API), for every method."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import napari_heatseg as hs


def _disks(shape=(96, 96), noise=0.2, seed=0):
    """A large disk (the object) and a similar small one beside it (a tempting leak)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    big = (yy - 48) ** 2 + (xx - 38) ** 2 < 24**2
    small = (yy - 48) ** 2 + (xx - 80) ** 2 < 9**2
    image = (big | small) + np.random.default_rng(seed).normal(0, noise, shape)
    return image, big, small, (yy, xx)


def _click(grid, centre, radius=5):
    yy, xx = grid
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def test_a_click_alone_starts_an_object():
    image, big, _, grid = _disks()
    labels = hs.segment(image, np.zeros(big.shape, np.uint8), seeds=_click(grid, (48, 38)).astype(np.uint8))
    assert labels.dtype == np.uint8
    assert (labels[big] == 1).mean() > 0.95 and (labels[~big] == 0).mean() > 0.99


def _leak_and_its_correction():
    """A click on the large disk with scope 'all' (which takes the look-alike small disk too),
    then a negative click on the small disk; returns (big, small, grid, first, corrected)."""
    image, big, small, grid = _disks()
    positive = _click(grid, (48, 38)).astype(np.uint8)
    first = hs.segment(image, np.zeros(big.shape, np.uint8), seeds=positive, scope="all")
    corrected = hs.segment(image, np.zeros(big.shape, np.uint8), seeds=positive, scope="all",
                           background=_click(grid, (48, 80)), initial=first)
    return big, small, grid, first, corrected


def test_a_negative_click_removes_a_leaked_region():
    big, small, grid, first, corrected = _leak_and_its_correction()
    assert first[small].mean() > 0.9  # "all" takes the look-alike too
    assert corrected[small].mean() < first[small].mean() - 0.5
    assert (corrected[big] == 1).mean() > 0.95  # the object itself is untouched


def test_a_correction_never_moves_a_far_boundary():
    """Locality: a click changes the result only near the evidence it brings."""
    big, small, grid, first, corrected = _leak_and_its_correction()
    yy, xx = grid
    far = (yy - 48) ** 2 + (xx - 80) ** 2 > 45**2  # beyond the click's reach (3 x its depth + 2 x 5)
    np.testing.assert_array_equal(corrected[far], first[far])


def test_a_seed_outside_the_box_widens_the_inside_region():
    image, big, _, grid = _disks()
    box = np.zeros(big.shape, np.uint8)
    box[18:80, 24:70] = 1  # too small: misses the disk's left rim (x 14-23)
    seeds = np.zeros(big.shape, np.uint8)
    seeds[46:50, 15:18] = 1  # a stroke on the rim, left of the box
    without = hs.segment(image, box, scope="inside")
    labels = hs.segment(image, box, scope="inside", seeds=seeds)
    assert (labels[seeds > 0] == 1).all() and not without[:, :24].any()
    rim = big & (grid[1] >= 18) & (grid[1] < 24)  # between the stroke and the box
    assert labels[rim].mean() > 0.5  # the region grew to reach the stroke


def test_background_inside_the_box_is_excluded():
    image, big, _, grid = _disks()
    box = np.zeros(big.shape, np.uint8)
    box[20:78, 10:68] = 1
    background = _click(grid, (48, 38), radius=8)
    labels = hs.segment(image, box, scope="inside", background=background)
    assert not labels[background].any()


@pytest.mark.parametrize("method", hs.methods())
def test_every_method_obeys_the_marks(method):
    image, big, small, grid = _disks(shape=(64, 64))
    start = np.zeros(big.shape, np.uint8)
    start[40:52, 30:42] = 1
    seeds = np.zeros(big.shape, np.uint8)
    seeds[5:9, 5:9] = 1  # a seed on the background: fixed anyway
    background = np.zeros(big.shape, bool)
    background[44:48, 34:38] = True  # inside the start: fixed as background
    labels = hs.segment(image, start, method=method, scope="all", seeds=seeds, background=background)
    assert (labels[seeds > 0] == 1).all() and not labels[background].any()


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**16), st.sampled_from(["object", "inside", "all"]))
def test_marks_stay_fixed_for_random_marks(seed, scope):
    rng = np.random.default_rng(seed)
    image, big, _, _ = _disks(shape=(48, 48), seed=seed % 7)
    start = np.zeros(big.shape, np.uint8)
    start[18:30, 14:26] = 1
    seeds = (rng.random(big.shape) < 0.01).astype(np.uint8)
    background = (rng.random(big.shape) < 0.01) & (seeds == 0)
    initial = hs.segment(image, start, scope=scope) if rng.random() < 0.5 else None
    states = list(hs.evolve(image, start, scope=scope, seeds=seeds, background=background, initial=initial,
                            max_num_iter=int(rng.integers(0, 6))))
    energies = [s.energy for s in states]
    assert all(b <= a for a, b in zip(energies, energies[1:]))
    for state in states:
        assert (state.labels[seeds > 0] == 1).all() and not state.labels[background].any()


@pytest.mark.parametrize("kwargs, match", [
    ({"seeds": "both"}, "marked both as a seed and as background"),
    ({"seeds": 2}, "holds label\\(s\\) 2 that the start does not have"),
    ({"initial": 3}, "`initial` holds label\\(s\\) 3"),
    ({"seeds": "shape"}, "`seeds` has shape \\(4, 4\\)"),
    ({"background": "float"}, "`background` must be a boolean mask"),
])
def test_bad_marks_get_a_clear_error(kwargs, match):
    image, big, _, grid = _disks(shape=(32, 32))
    start = np.zeros(big.shape, np.uint8)
    start[10:20, 10:20] = 1
    mark = np.zeros(big.shape, np.uint8)
    mark[12:14, 12:14] = 1
    given = {}
    for name, value in kwargs.items():
        if value == "both":
            given = {"seeds": mark, "background": mark > 0}
        elif value == "shape":
            given[name] = np.ones((4, 4), np.uint8)
        elif value == "float":
            given[name] = mark * 0.5
        else:
            given[name] = mark * value
    with pytest.raises((ValueError, TypeError), match=match):
        hs.segment(image, start, **given)


def test_near_a_negative_click_the_result_only_shrinks():
    big, small, grid, first, corrected = _leak_and_its_correction()
    assert not (corrected.astype(bool) & ~first.astype(bool)).any()


def test_a_speckled_result_does_not_blunt_a_negative_click():
    """Small holes in the result are not where it agrees with a negative click."""
    _, big, small, grid = _disks(shape=(128, 160), noise=0.1)
    yy, xx = grid
    blob = (yy - 64) ** 2 + (xx - 110) ** 2 < 30**2  # a large leaked look-alike ...
    image = (big | blob) + np.random.default_rng(0).normal(0, 0.1, blob.shape)
    speckled = blob.copy()
    speckled[::7, ::7] &= ~blob[::7, ::7]  # ... full of one-pixel holes
    initial = speckled.astype(np.uint8)
    positive = np.zeros(blob.shape, np.uint8)
    positive[60:64, 30:34] = 1
    start = np.zeros(blob.shape, np.uint8)
    background = _click(grid, (64, 110))
    corrected = hs.segment(image, start, seeds=positive, background=background, initial=initial, scope="all")
    # the core is a disk of half the blob's radius (a quarter of it); measured to the nearest
    # hole it would be a disk of 3 pixels (5 % of the blob removed)
    assert (corrected[blob] == 0).mean() > 0.25
