"""Threshold dynamics: energy, invariances, geometry, multi-label, and real images."""

import numpy as np
import pytest

import napari_heatseg as hs
from napari_heatseg.core.ictm import threshold_dynamics
from napari_heatseg.core.inputs import prepare

from dev_data import load_item


def disk_image(shape=(96, 96), centre=(48, 48), radius=20, noise=0.15, seed=0):
    grid = np.indices(shape)
    inside = sum((g - c) ** 2 for g, c in zip(grid, centre)) < radius**2
    rng = np.random.default_rng(seed)
    return inside.astype(np.float64) + rng.normal(0, noise, shape), inside


def small_start(shape, centre, half=4):
    start = np.zeros(shape, dtype=np.uint8)
    start[tuple(slice(c - half, c + half) for c in centre)] = 1
    return start


def iou(a, b):
    a, b = a > 0, b > 0
    return (a & b).sum() / max((a | b).sum(), 1)


@pytest.mark.parametrize("scope", ["object", "all"])
def test_disk_with_known_radius_recovered(scope):
    image, truth = disk_image(radius=20)
    labels = hs.segment(image, small_start(image.shape, (48, 48)), scope=scope)
    area = (labels > 0).sum()
    assert abs(np.sqrt(area / np.pi) - 20) < 1.0  # radius within one pixel
    assert iou(labels, truth) > 0.95


def test_sphere_with_known_radius_recovered():
    image, truth = disk_image(shape=(40, 48, 48), centre=(20, 24, 24), radius=12, noise=0.1)
    labels = hs.segment(image, small_start(image.shape, (20, 24, 24), half=3), scope="object")
    radius = (3 * (labels > 0).sum() / (4 * np.pi)) ** (1 / 3)
    assert abs(radius - 12) < 1.0
    assert iou(labels, truth) > 0.93


def test_anisotropic_spacing_gives_a_ball_in_physical_units():
    # a ball of radius 20 mm sampled with 5 mm slices and 1 mm pixels
    spacing = (5.0, 1.0, 1.0)
    grid = np.indices((17, 64, 64)).astype(float)
    centre = (8, 32, 32)
    dist = np.sqrt(sum(((g - c) * h) ** 2 for g, c, h in zip(grid, centre, spacing)))
    truth = dist < 20
    image = truth + np.random.default_rng(1).normal(0, 0.1, truth.shape)
    start = (dist < 6).astype(np.uint8)
    labels = hs.segment(image, start, spacing=spacing, scope="object")
    assert iou(labels, truth) > 0.9
    for axis, others in ((0, (1, 2)), (1, (0, 2)), (2, (0, 1))):  # as tall in mm as it is wide
        extent = np.ptp(np.nonzero(labels.any(axis=others))[0])
        assert abs(extent - np.ptp(np.nonzero(truth.any(axis=others))[0])) <= 1


def test_energy_never_increases_and_is_the_true_energy():
    image, _ = disk_image(noise=0.3)
    start = small_start(image.shape, (40, 40), half=10)
    prepared = prepare(image, start, scope="all")
    states = [(i, p.copy(), e) for i, p, e in threshold_dynamics(prepared, coarse_to_fine=False)]
    energies = np.array([e for *_, e in states])
    assert len(energies) > 2
    assert np.all(np.diff(energies) <= 0)
    # recompute the energy of the last state from its definition (lam D + scaled <u0, G u1>)
    from napari_heatseg.core.heat import heat_step
    from napari_heatseg.core.models import make_model

    phases = states[-1][1]
    f = prepared.image
    data = 0.0
    for k in (0, 1):
        model = make_model("gaussian", 1, min_std=0.1)
        model.fit(f[phases == k])
        data += 2.0 * model.cost(f)[phases == k].sum()
    u1 = (phases == 1).astype(np.float64)
    interaction = np.sqrt(np.pi / 2.0) * np.sum((1 - u1) * heat_step(u1, 2.0))
    assert states[-1][2] == pytest.approx(data + interaction, rel=1e-3)


@pytest.mark.parametrize("item", ["0114f484a16c152b", "1879f4f4f05e2bad"])
def test_energy_non_increasing_on_real_nuclei(item):
    image, mask, _ = load_item("nuclei2d_dsb2018", item)
    start = np.zeros(mask.shape, np.uint8)
    start[mask == np.bincount(mask.ravel())[1:].argmax() + 1] = 1
    energies = [s.energy for s in hs.evolve(image, start, scope="all")]
    assert np.all(np.diff(energies) <= 0)


def test_energy_non_increasing_on_real_colour_image():
    image, mask, _ = load_item("natural2d_grabcut", "388016")
    rows, cols = np.nonzero(mask == 1)
    start = np.zeros(mask.shape, np.uint8)
    start[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = 1
    energies = [s.energy for s in hs.evolve(image, start, channel_axis=-1, scope="inside")]
    assert np.all(np.diff(energies) <= 0)


def test_scale_and_shift_do_not_change_the_result():
    image, mask, _ = load_item("nuclei2d_dsb2018", "0ed3555a4bd48046")
    start = np.zeros(mask.shape, np.uint8)
    start[mask == 1] = 1
    base = hs.segment(image, start, scope="all")
    shifted = hs.segment(image.astype(np.float64) * 255 + 1000, start, scope="all")
    assert base.any()
    assert np.mean(base == shifted) > 0.9999  # identical up to float rounding at ties


@pytest.mark.parametrize("transform", [np.transpose, np.flipud, np.fliplr, lambda a: np.rot90(a, 1)])
def test_equivariant_under_transposition_and_flips(transform):
    image, mask, _ = load_item("nuclei2d_dsb2018", "1962d0c5faf3e85c")  # non-square, 519 x 162
    start = np.zeros(mask.shape, np.uint8)
    start[mask == 3] = 1
    start[mask == 7] = 1
    base = hs.segment(image, start, scope="all")
    moved = hs.segment(transform(image), transform(start), scope="all")
    assert np.mean(transform(base) == moved) > 0.999


def test_multilabel_start_keeps_its_labels_on_the_phantom():
    image, mask, spacing = load_item("mri3d_pyradiomics", "prostate_phantom")
    from scipy import ndimage

    start = np.zeros(mask.shape, np.uint16)
    for value in (1, 7, 8, 9):
        inner = ndimage.binary_erosion(mask == value, iterations=2)
        start[inner if inner.any() else mask == value] = value
    labels = hs.segment(image, start, spacing=spacing, scope="object")
    assert labels.dtype == start.dtype
    assert set(np.unique(labels)) == {0, 1, 7, 8, 9}
    for value in (1, 7, 8, 9):  # each label still covers a good part of its own compartment
        assert np.count_nonzero((labels == value) & (mask == value)) > 0.2 * np.count_nonzero(mask == value)
    assert iou(labels == 9, mask == 9) > 0.6  # the large compartment is found (measured 0.64)


def test_inside_scope_never_leaves_the_marked_region():
    image, _ = disk_image(radius=30, noise=0.2)
    start = np.zeros(image.shape, np.uint8)
    start[20:76, 20:60] = 1  # a box cutting through the disk
    labels = hs.segment(image, start, scope="inside")
    assert labels.any()
    assert not labels[start == 0].any()


def test_object_scope_is_one_connected_object_per_label():
    from scipy import ndimage

    image = np.zeros((80, 80))
    image[10:30, 10:30] = 1
    image[50:70, 50:70] = 1  # a twin the object must not jump to
    image += np.random.default_rng(2).normal(0, 0.1, image.shape)
    start = small_start(image.shape, (20, 20), half=3)
    labels = hs.segment(image, start, scope="object")
    assert ndimage.label(labels > 0)[1] == 1
    assert labels[20, 20] and not labels[60, 60]
    everything = hs.segment(image, start, scope="all")
    assert everything[60, 60]  # while "all" finds the twin


def test_nan_pixels_carry_no_data_and_never_give_nan(rng):
    image, truth = disk_image()
    image[rng.random(image.shape) < 0.05] = np.nan
    image[0, 0] = np.inf
    labels = hs.segment(image, small_start(image.shape, (48, 48)), scope="all")
    assert iou(labels, truth) > 0.9


def test_inputs_are_not_modified():
    image, _ = disk_image()
    start = small_start(image.shape, (48, 48))
    image_before, start_before = image.copy(), start.copy()
    hs.segment(image, start)
    np.testing.assert_array_equal(image, image_before)
    np.testing.assert_array_equal(start, start_before)


def test_closing_evolve_stops_the_work():
    image, _ = disk_image(noise=0.4)
    calls = []
    steps = hs.evolve(image, small_start(image.shape, (48, 48)), scope="all",
                      iter_callback=lambda *state: calls.append(state[0]))
    first = next(steps)
    steps.close()
    assert first.iteration == 0 and calls == [0]
    with pytest.raises(StopIteration):
        next(steps)


@pytest.mark.parametrize("model", ["mean", "gaussian", "gmm"])
def test_every_region_model_segments_the_disk(model):
    image, truth = disk_image()
    labels = hs.segment(image, small_start(image.shape, (48, 48)), scope="object", model=model)
    assert iou(labels, truth) > 0.9


def test_dct_and_gaussian_heat_agree_on_the_result():
    image, truth = disk_image()
    start = small_start(image.shape, (48, 48))
    edge = hs.segment(image, start, scope="all", edge=0.5)
    assert iou(edge, truth) > 0.9


def test_hole_filling_equals_scipy_in_3d_and_per_plane(rng):
    """scope='object' answers solid objects; the fast filling must fill exactly scipy's holes."""
    from scipy import ndimage

    from napari_heatseg.core.morphology import fill_holes as _fill_holes

    for _ in range(200):
        ndim = int(rng.integers(2, 4))
        mask = rng.random(tuple(rng.integers(1, 14, ndim))) < rng.uniform(0.2, 0.8)
        spacing = tuple(rng.choice([1.0, 5.0], ndim))
        expected = ndimage.binary_fill_holes(mask)
        if ndim == 3:
            thickest = int(np.argmax(spacing))
            planes = [ndimage.binary_fill_holes(p) for p in np.moveaxis(expected, thickest, 0)]
            expected = np.moveaxis(np.stack(planes), 0, thickest)
        np.testing.assert_array_equal(_fill_holes(mask, spacing), expected)


def test_half_unlike_distance_equals_the_sorted_definition():
    """The binned search of scope='object''s reach gives what sorting every voxel gives."""
    from napari_heatseg.core.morphology import half_unlike_distance as _half_unlike_distance

    def by_sorting(distance, unlike):
        order = np.argsort(distance, kind="stable")
        share = np.cumsum(unlike[order]) / np.arange(1, order.size + 1)
        first = np.nonzero(share >= 0.5)[0]
        return float(distance[order][first[0]]) if first.size else None

    rng = np.random.default_rng(0)
    for _ in range(500):
        n = int(rng.integers(1, 300))
        distance = np.round(rng.random(n) * rng.integers(1, 20), int(rng.integers(0, 3)))  # many ties
        unlike = rng.random(n) < rng.random()
        expected = by_sorting(distance, unlike)
        assert _half_unlike_distance(distance, unlike, n_bins=int(rng.integers(1, 40))) == expected
        assert _half_unlike_distance(distance, unlike) == expected


@pytest.mark.parametrize("model", ["gaussian", "mean"])
@pytest.mark.parametrize("shape, spacing, scope", [((64, 72), None, "all"), ((64, 72), None, "object"),
                                                   ((64, 72), None, "inside"),
                                                   ((12, 40, 36), (3.0, 1.0, 1.0), "object")])
def test_compiled_and_numpy_decisions_give_the_same_states(model, shape, spacing, scope):
    """The compiled two-phase loop and the numpy step are one method: same phases, same energies."""
    centre = tuple(n // 2 for n in shape)
    image, _ = disk_image(shape=shape, centre=centre, radius=min(shape) // 3, noise=0.3)
    prepared = prepare(image, small_start(shape, centre, half=3), spacing=spacing, scope=scope)
    runs = {decision: [(i, p.copy(), e) for i, p, e in threshold_dynamics(prepared, model=model, decision=decision)]
            for decision in ("compiled", "numpy")}
    assert len(runs["compiled"]) == len(runs["numpy"]) > 1
    for (i, a, e), (j, b, f) in zip(runs["compiled"], runs["numpy"]):
        assert i == j and e == f
        np.testing.assert_array_equal(a, b)


def test_the_compiled_decision_is_refused_where_it_does_not_apply():
    image, _ = disk_image()
    rgb = np.stack([image, image**2, -image], axis=-1)
    prepared = prepare(rgb, small_start(image.shape, (48, 48)), channel_axis=-1)
    with pytest.raises(ValueError, match="compiled decision needs two grey phases"):
        next(threshold_dynamics(prepared, decision="compiled"))


@pytest.mark.parametrize("channels", [2, 3, 5])
def test_colour_gaussian_cost_equals_its_definition(channels):
    """The compiled whitened norm is ``1/2 (f - m)^T S^-1 (f - m) + 1/2 log det S`` per pixel,
    into a given array too (also a non-contiguous one)."""
    from napari_heatseg.core.models import make_model

    rng = np.random.default_rng(channels)  # result-bearing seed
    mixing = rng.standard_normal((channels, channels)).astype(np.float32)
    image = (rng.standard_normal((40, 30, channels)).astype(np.float32) @ mixing) + 2.0
    model = make_model("gaussian", channels, min_std=0.01)
    model.fit(image[:20].reshape(-1, channels))
    samples = image[:20].reshape(-1, channels).astype(np.float64)
    cov = np.cov(samples, rowvar=False, bias=True)
    centred = image.astype(np.float64) - samples.mean(axis=0)
    expected = 0.5 * np.einsum("...i,ij,...j->...", centred, np.linalg.inv(cov), centred)
    expected += 0.5 * np.linalg.slogdet(cov)[1]
    np.testing.assert_allclose(model.cost(image), expected, rtol=1e-4, atol=1e-4)
    into = np.zeros((30, 40), np.float32).T  # a transposed (non-contiguous) target
    assert model.cost(image, out=into) is into
    np.testing.assert_allclose(into, expected, rtol=1e-4, atol=1e-4)
