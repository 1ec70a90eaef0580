"""The edge-aware heat operator exp(-tau L_w): the properties threshold dynamics relies on."""

import numpy as np
import pytest

import napari_heatseg as hs
from napari_heatseg.core.edge_heat import EdgeHeatOperator, contrast_weights
from napari_heatseg.core.heat import HeatOperator

RNG = np.random.default_rng(7)


def _photo_like(shape=(48, 64), channels=3):
    """Piecewise-constant colour regions with noise: edges of every strength."""
    image = np.zeros(shape + (channels,), np.float32)
    image[shape[0] // 3:, :] += RNG.random(channels)
    image[:, shape[1] // 2:] += RNG.random(channels)
    return image + 0.05 * RNG.standard_normal(image.shape).astype(np.float32)


@pytest.mark.parametrize("shape,spacing", [((48, 64), (1.0, 1.0)), ((6, 20, 24), (3.0, 1.0, 1.0)), ((1, 30, 40), (1.0, 1.0, 1.0))])
@pytest.mark.parametrize("tau", [1.5, 20.0])
def test_symmetric_positive_semidefinite_and_mass_conserving(shape, spacing, tau):
    operator = EdgeHeatOperator(_photo_like(shape), tau, spacing, edge=1.0)
    x, y = RNG.standard_normal((2, *shape)).astype(np.float32)
    kx, ky = operator(x).astype(np.float64), operator(y).astype(np.float64)
    scale = np.linalg.norm(x) * np.linalg.norm(y)
    assert abs(np.vdot(y, kx) - np.vdot(x, ky)) < 1e-5 * scale  # <y, K x> = <x, K y>
    for v, kv in ((x, kx), (y, ky), (x - y, kx - ky)):
        assert np.vdot(v, kv) >= -1e-6 * np.vdot(v, v)  # <v, K v> >= 0
    assert abs(kx.sum() - x.sum(dtype=np.float64)) < 1e-4 * np.abs(x).sum()  # reflecting borders: mass kept
    np.testing.assert_allclose(operator(np.ones(shape, bool)), 1.0, atol=1e-5)  # constants kept
    assert (operator(x > 0) >= -1e-4).all()  # an indicator stays (nearly) non-negative


@pytest.mark.parametrize("tau", [2.0, 8.0, 30.0])
def test_with_all_weights_one_it_is_the_plain_gaussian(tau):
    image = RNG.random((60, 70, 1)).astype(np.float32)
    u = (RNG.random((60, 70)) > 0.6).astype(np.float32)
    edge_free = EdgeHeatOperator(image, tau, (1.0, 1.0), edge=0.0)(u)
    gaussian = HeatOperator(u.shape, tau, (1.0, 1.0), "dct")(u)  # the exact Neumann semigroup
    # the discrete Gaussian differs from the sampled one by O(1 / sigma^2) of the peak
    assert np.abs(edge_free - gaussian).max() < 0.5 / (2 * tau)
    anisotropic = EdgeHeatOperator(RNG.random((8, 30, 30, 1)).astype(np.float32), tau, (2.0, 1.0, 1.0), 0.0)
    v = (RNG.random((8, 30, 30)) > 0.5).astype(np.float32)
    exact = HeatOperator(v.shape, tau, (2.0, 1.0, 1.0), "dct")(v)
    assert np.abs(anisotropic(v) - exact).max() < 0.5 / (2 * tau) * 4


def test_heat_crosses_a_strong_edge_far_less_than_the_plain_kernel():
    image = np.zeros((40, 40, 1), np.float32)
    image[:, 20:] = 1.0
    image += 0.01 * RNG.standard_normal(image.shape).astype(np.float32)
    left = np.zeros((40, 40), np.float32)
    left[:, :20] = 1.0
    tau = 8.0
    across_edge = EdgeHeatOperator(image, tau, (1.0, 1.0), edge=1.0)(left)[:, 20:].sum()
    across_plain = HeatOperator(left.shape, tau, (1.0, 1.0))(left)[:, 20:].sum()
    assert across_edge < 0.05 * across_plain


def test_contrast_weights_are_free_of_the_intensity_scale():
    image = _photo_like()
    for a, b in zip(contrast_weights(image, (1.0, 1.0), 1.0), contrast_weights(1000.0 * image + 5, (1.0, 1.0), 1.0)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_energy_never_increases_with_the_edge_operator():
    image = _photo_like((64, 64))
    start = np.zeros((64, 64), np.uint8)
    start[10:50, 20:60] = 1
    for scope in ("inside", "all"):
        energies = [e for _, _, e in hs.evolve(image, start, channel_axis=-1, scope=scope, edge=1.0,
                                                coarse_to_fine=False, max_num_iter=30)]
        assert len(energies) > 2
        assert np.all(np.diff(energies) <= 1e-6 * np.abs(energies).max())


def _textured_square(seed):
    """A square one step brighter than its surround, both covered by the same smooth
    texture (whose slow changes the region models cannot tell from the step), and a loose box."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    truth = np.zeros((80, 80), bool)
    truth[20:60, 20:60] = True
    image = ndimage.gaussian_filter(rng.standard_normal((80, 80, 3)).astype(np.float32), (3, 3, 0)) * 6
    image[truth] += np.float32(1.0)
    box = np.zeros((80, 80), np.uint8)
    box[12:68, 12:68] = 1
    return image, box, truth


def test_the_boundary_settles_on_the_edge_the_plain_kernel_misses():
    iou = {0.0: [], 1.0: []}
    for seed in (1, 2, 3):
        image, box, truth = _textured_square(seed)
        for edge in iou:
            found = hs.segment(image, box, channel_axis=-1, scope="inside", edge=edge) > 0
            iou[edge].append(np.count_nonzero(found & truth) / np.count_nonzero(found | truth))
    assert np.mean(iou[1.0]) > 0.9 and np.mean(iou[1.0]) > np.mean(iou[0.0]) + 0.03, iou


def test_a_diffusion_too_wide_for_the_chebyshev_series_is_refused():
    with pytest.raises(ValueError, match="too wide for the edge-aware heat"):
        EdgeHeatOperator(RNG.random((20, 20, 1)).astype(np.float32), 1e6, (1.0, 1.0), 1.0)


def test_area_matrix_keeps_constants_and_gives_every_coarse_cell_the_same_share():
    from napari_heatseg.core.edge_heat import area_matrix

    for n, m in ((10, 3), (64, 16), (7, 7), (5, 1)):
        p = area_matrix(n, m).toarray()
        np.testing.assert_allclose(p.sum(axis=1), 1.0)  # P 1 = 1
        np.testing.assert_allclose(p.sum(axis=0), n / m)  # P^T 1 = (n / m) 1
        assert (p >= 0).all() and ((p > 0).sum(axis=1) <= 2).all()


@pytest.mark.parametrize("shape,spacing,factors", [((61, 47), (1.0, 1.0), (3, 3)),
                                                   ((9, 40, 33), (3.0, 1.0, 1.0), (1, 2, 2))])
def test_the_coarsened_operator_keeps_what_threshold_dynamics_needs(shape, spacing, factors):
    from napari_heatseg.core.edge_heat import CoarsenedEdgeHeat

    operator = CoarsenedEdgeHeat(_photo_like(shape), 150.0, spacing, 1.0, factors)
    x, y = RNG.standard_normal((2, *shape)).astype(np.float32)
    kx, ky = operator(x).astype(np.float64), operator(y).astype(np.float64)
    scale = np.linalg.norm(x) * np.linalg.norm(y)
    assert abs(np.vdot(y, kx) - np.vdot(x, ky)) < 1e-5 * scale
    for v, kv in ((x, kx), (y, ky), (x - y, kx - ky)):
        assert np.vdot(v, kv) >= -1e-6 * np.vdot(v, v)
    assert abs(kx.sum() - x.sum(dtype=np.float64)) < 1e-4 * np.abs(x).sum()
    np.testing.assert_allclose(operator(np.ones(shape, bool)), 1.0, atol=1e-5)


def test_a_wide_kernel_is_applied_coarser_and_stays_close_to_the_exact_one():
    """sigma = 24 voxels: on a grid 3x coarser, ``K u`` of a region bounded by image edges is
    the exact operator's to about 2 % on average (the plain Gaussian's: 15 %; near the edge
    it differs by up to half, the coarse cells straddling it), and thresholded at 1/2, as
    threshold dynamics does, it misses the exact operator's region by under half a voxel
    along the edge (about 75 voxels; the plain Gaussian's misses 490)."""
    from napari_heatseg.core.edge_heat import CoarsenedEdgeHeat, edge_heat_operator

    image = _photo_like((120, 150))
    tau = 24.0**2 / 2
    operator = edge_heat_operator(image, tau, (1.0, 1.0), 1.0)
    assert isinstance(operator, CoarsenedEdgeHeat) and operator.coarse.shape == (40, 50)
    u = np.zeros((120, 150), np.float32)
    u[40:, :75] = 1.0
    exact = EdgeHeatOperator(image, tau, (1.0, 1.0), 1.0)(u)
    coarsened = operator(u)
    plain = HeatOperator(u.shape, tau, (1.0, 1.0))(u)
    assert np.abs(coarsened - exact).mean() < 0.2 * np.abs(plain - exact).mean()
    assert coarsened[:40].sum() < 0.3 * plain[:40].sum()  # the edge at row 40 still holds heat back
    misses = np.count_nonzero((coarsened > 0.5) != (exact > 0.5))
    assert misses < 0.25 * np.count_nonzero((plain > 0.5) != (exact > 0.5))


def test_segmenting_with_the_coarsened_operator_matches_the_exact_one(monkeypatch):
    """The textured square at twice the size (box sigma 2.8 voxels) with coarsening from
    1.4 voxels (shipped: 8, i.e. boxes of over 640 pixels), so on a grid 2x coarser: the
    energy still never increases, and the result is the exact operator's to 1 % of IoU."""
    import napari_heatseg.core.edge_heat as edge_heat

    image, box, truth = _textured_square(1)
    image = np.repeat(np.repeat(image, 2, axis=0), 2, axis=1)
    box, truth = (np.kron(a, np.ones((2, 2), a.dtype)) for a in (box, truth))
    exact = hs.segment(image, box, channel_axis=-1, scope="inside", edge=1.0) > 0
    monkeypatch.setattr(edge_heat, "COARSEN_FROM_SIGMA", 1.4)
    applied = []
    monkeypatch.setattr(edge_heat.CoarsenedEdgeHeat, "__call__",
                        lambda self, u, out=None, call=edge_heat.CoarsenedEdgeHeat.__call__:
                        applied.append(self.coarse.shape) or call(self, u, out))
    energies = [e for _, _, e in hs.evolve(image, box, channel_axis=-1, scope="inside", edge=1.0,
                                            coarse_to_fine=False, max_num_iter=30)]
    assert len(energies) > 2 and np.all(np.diff(energies) <= 1e-6 * np.abs(energies).max())
    coarsened = hs.segment(image, box, channel_axis=-1, scope="inside", edge=1.0) > 0
    assert applied and all(n < 160 // 2 + 10 for shape in applied for n in shape)  # the coarse grid ran
    iou = [np.count_nonzero(found & truth) / np.count_nonzero(found | truth) for found in (exact, coarsened)]
    assert iou[0] > 0.95 and iou[1] > iou[0] - 0.01, iou
