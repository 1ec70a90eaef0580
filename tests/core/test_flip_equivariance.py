"""Flipping the image and the start flips the answer exactly, at every size (issue 19 item 11).

The coarse grids of the heat method are made by :func:`~napari_heatseg.core.ictm.levels.resample`;
at sizes not divisible by the factor (odd images, a region's bounding box) it used
``scipy.ndimage.zoom``, whose rounded sample positions break ties one way: up to 132 pixels
of an object differed between a flipped run and the flipped result.
"""

import numpy as np
import pytest
from scipy import ndimage

import napari_heatseg as hs
from napari_heatseg.core.ictm.levels import resample

FLIPS = {"up-down": np.flipud, "left-right": np.fliplr, "both": lambda a: a[::-1, ::-1]}


def smooth_noise_with_a_mark(shape, seed):
    """Smooth noise (many near-ties for the coarse grids) and a square mark off-centre."""
    rng = np.random.default_rng(seed)
    image = ndimage.gaussian_filter(rng.random(shape), 3) + 0.02 * rng.random(shape)
    row, column = rng.integers(20, shape[0] - 20), rng.integers(20, shape[1] - 20)
    start = np.zeros(shape, np.uint8)
    start[row - 5: row + 6, column - 5: column + 6] = 1
    return image, start


@pytest.mark.parametrize("shape,seed", [((157, 193), 1), ((67, 250), 4), ((255, 129), 0)])
@pytest.mark.parametrize("scope", ["object", "all", "inside"])
def test_a_flipped_run_is_the_flipped_result_at_odd_sizes(shape, seed, scope):
    image, start = smooth_noise_with_a_mark(shape, seed)
    if scope == "inside":
        start = ndimage.binary_dilation(start, iterations=12).astype(np.uint8)  # a box around the mark
    base = hs.segment(image, start, scope=scope)
    assert base.any()
    for name, flip in FLIPS.items():
        moved = hs.segment(flip(image), flip(start), scope=scope)
        assert np.count_nonzero(flip(base) != moved) == 0, name


@pytest.mark.parametrize("n,m", [(157, 39), (193, 48), (67, 17), (250, 62), (39, 157), (17, 67), (30, 61)])
@pytest.mark.parametrize("order", [0, 1])
def test_resample_commutes_with_flips_to_the_bit(n, m, order):
    rng = np.random.default_rng(n * m)
    array = rng.random((n, n + 3, 2), dtype=np.float32) if order else rng.integers(0, 4, (n, n + 3)).astype(np.uint8)
    shape = (m, m + 1)
    out = resample(array, shape, order)
    assert out.shape[:2] == shape and out.dtype == array.dtype
    for flip in FLIPS.values():
        np.testing.assert_array_equal(resample(flip(array), shape, order), flip(out))


@pytest.mark.parametrize("n,m", [(157, 39), (39, 157), (30, 61), (61, 30)])
def test_resample_is_zooms_interpolation_with_exact_positions(n, m):
    """Order 1: ``zoom``'s values to a float32 rounding; order 0: ``zoom``'s except at exact ties."""
    rng = np.random.default_rng(0)
    values = rng.random((n, 7), dtype=np.float32)
    expected = ndimage.zoom(values, (m / n, 1), order=1, mode="grid-mirror", grid_mode=True)
    np.testing.assert_allclose(resample(values, (m, 7)), expected, rtol=0, atol=6e-8)
    phases = rng.integers(0, 3, (n, 7)).astype(np.uint8)
    expected = ndimage.zoom(phases, (m / n, 1), order=0, mode="grid-mirror", grid_mode=True)
    numerator = (2 * np.arange(m) + 1) * n - m
    tie = numerator % (2 * m) == m
    np.testing.assert_array_equal(resample(phases, (m, 7), order=0)[~tie], expected[~tie])


@pytest.mark.parametrize("n,f", [(96, 2), (96, 4), (99, 3)])
def test_exact_positions_agree_with_the_pyramids_slicing_on_divisible_sizes(n, f):
    """The whole-number factors keep their slicing path; the general one gives the same values."""
    from napari_heatseg.core.ictm.levels import _resample_axis

    values = np.random.default_rng(f).random((n, 5), dtype=np.float32)
    general = _resample_axis(values, 0, n // f, order=1).astype(np.float32)
    np.testing.assert_array_equal(general, resample(values, (n // f, 5)))
    coarse = np.random.default_rng(f).integers(0, 3, (n // f, 5)).astype(np.uint8)
    np.testing.assert_array_equal(_resample_axis(coarse, 0, n, order=0), resample(coarse, (n, 5), order=0))
