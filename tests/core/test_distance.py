"""distance_to: the exact Euclidean distance transform, against scipy's."""

import numpy as np
import pytest
from scipy import ndimage

from napari_heatseg.core.distance import distance_to


@pytest.mark.parametrize("seed", range(4))
def test_equals_scipy_on_random_masks_with_spacing(seed):
    rng = np.random.default_rng(seed)
    for _ in range(60):
        ndim = int(rng.integers(1, 4))
        shape = tuple(int(n) for n in rng.integers(1, 14, ndim))
        features = rng.random(shape) < rng.choice([0.005, 0.05, 0.3, 0.9])
        features.flat[rng.integers(features.size)] = True
        spacing = tuple(rng.choice([1.0, 0.7, 2.5, 6.5], ndim))
        np.testing.assert_allclose(distance_to(features, spacing),
                                   ndimage.distance_transform_edt(~features, sampling=spacing), rtol=1e-12, atol=1e-12)


def test_a_single_voxel_gives_the_exact_radius_everywhere():
    features = np.zeros((9, 40, 50), bool)
    features[4, 10, 30] = True
    spacing = (3.0, 1.0, 0.5)
    grid = np.indices(features.shape).astype(float)
    expected = np.sqrt(sum(((g - c) * h) ** 2 for g, c, h in zip(grid, (4, 10, 30), spacing)))
    np.testing.assert_allclose(distance_to(features, spacing), expected, atol=1e-12)


def test_without_features_it_is_scipys_answer():
    empty = np.zeros((3, 4), bool)
    np.testing.assert_array_equal(distance_to(empty), ndimage.distance_transform_edt(~empty))
