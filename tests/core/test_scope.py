"""scope="object"'s morphology on bounded boxes equals its definition on the whole grid."""

import numpy as np
import pytest
from scipy import ndimage

from napari_heatseg.core.morphology import as_objects, depth, fill_holes, half_unlike_distance, object_domain


def whole_grid_domain(image, valid, start, n_labels, spacing, reach, min_std):
    """object_domain's definition, every distance on the whole grid."""
    domain = np.zeros(start.shape, dtype=bool)
    for k in range(1, n_labels + 1):
        mark = start == k
        distance = ndimage.distance_transform_edt(~mark, sampling=spacing)
        margin = reach * max(depth(mark, spacing), 1.0)
        samples = image[mark & valid]
        if len(samples):
            spread = np.maximum(samples.std(axis=0), min_std)
            unlike = np.any(np.abs(image - samples.mean(axis=0)) > 2 * spread, axis=-1)
            half = half_unlike_distance(distance[valid], unlike[valid])
            if half is not None:
                margin = max(margin, 2 * half)
        domain |= distance <= margin
    return domain


def whole_grid_objects(phases, previous, seeds, n_labels, spacing):
    """as_objects' definition, every label on the whole grid."""
    out = phases.copy()
    for k in range(1, n_labels + 1):
        mask = phases == k
        if not mask.any():
            mask = (previous == k) & (out == 0)
            out[mask] = k
        components, n = ndimage.label(mask)
        if n > 1:
            touched = np.unique(components[(seeds == k) & mask])
            touched = touched[touched > 0]
            if touched.size == 0:
                touched = [np.argmax(np.bincount(components.ravel())[1:]) + 1]
            out[mask & ~np.isin(components, touched)] = 0
            mask = out == k
        out[fill_holes(mask, spacing) & (out == 0)] = k
    return out


def random_case(seed):
    rng = np.random.default_rng(seed)  # result-bearing seed: each seed is one case
    ndim = int(rng.choice([2, 3]))
    shape = tuple(int(s) for s in rng.integers(6, 36, ndim))
    spacing = tuple(float(h) for h in rng.choice([0.5, 0.78125, 1.0, 3.0, 6.5], ndim))
    n_labels = int(rng.integers(1, 4))
    smooth = ndimage.gaussian_filter(rng.standard_normal(shape), 2)
    phases = np.digitize(smooth, np.quantile(smooth, np.linspace(0.3, 0.9, n_labels))).astype(np.uint8)
    phases[phases > n_labels] = 0
    previous = np.roll(phases, 1, axis=0)
    if rng.random() < 0.3:
        phases[phases == 1] = 0  # a label about to vanish keeps its previous extent
    seeds = np.where(rng.random(shape) < 0.02, previous, 0).astype(np.uint8)
    image = (smooth + 0.3 * rng.standard_normal(shape))[..., None].astype(np.float32)
    valid = rng.random(shape) > 0.05
    start = np.zeros(shape, np.uint8)
    for k in range(1, n_labels + 1):
        corner = [int(rng.integers(0, s - 3)) for s in shape]
        start[tuple(slice(c, c + 3) for c in corner)] = k
    reach, min_std = float(rng.choice([0.0, 0.5, 2.0, 5.0])), float(rng.choice([1e-3, 0.1, 1.0]))
    return phases, previous, seeds, n_labels, spacing, image, valid, start, reach, min_std


@pytest.mark.parametrize("seed", range(40))
def test_bounded_boxes_give_the_whole_grid_answer(seed):
    phases, previous, seeds, n_labels, spacing, image, valid, start, reach, min_std = random_case(seed)
    np.testing.assert_array_equal(as_objects(phases, previous, seeds, n_labels, spacing),
                                  whole_grid_objects(phases, previous, seeds, n_labels, spacing))
    values, start = np.unique(start, return_inverse=True)  # a later mark may cover an earlier one
    start, n_marked = start.reshape(phases.shape).astype(np.uint8), len(values) - 1
    np.testing.assert_array_equal(
        object_domain(image, valid, start, n_marked, spacing, reach, min_std),
        whole_grid_domain(image, valid, start, n_marked, spacing, reach, min_std))
