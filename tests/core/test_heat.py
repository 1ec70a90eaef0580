import numpy as np
import pytest

from scipy import ndimage

from napari_heatseg.core.heat import HeatOperator, gaussian_blur, heat_step, sigma_voxels


def test_sigma_follows_tau_and_spacing_only():
    assert sigma_voxels(2.0, (1.0, 1.0)) == (2.0, 2.0)
    assert sigma_voxels(8.0, (4.0, 0.5)) == pytest.approx((1.0, 8.0))
    for n in (64, 256, 1024):  # unlike heatdiff, the width never depends on the image size
        assert HeatOperator((n, n), 2.0).sigma == (2.0, 2.0)


@pytest.mark.parametrize("variant", ["gaussian", "dct"])
@pytest.mark.parametrize("shape", [(40, 57), (9, 20, 31)])
def test_constant_is_preserved_no_zero_padding(variant, shape):
    out = heat_step(np.ones(shape), 3.0, variant=variant)
    np.testing.assert_allclose(out, 1.0, atol=1e-5)  # corners included: nothing leaks out


@pytest.mark.parametrize("variant", ["gaussian", "dct"])
def test_mass_conserved_and_symmetric(variant, rng):
    u = (rng.random((48, 64)) > 0.7).astype(np.float32)
    v = rng.random((48, 64)).astype(np.float32)
    op = HeatOperator(u.shape, 4.0, variant=variant)
    assert op(u).sum() == pytest.approx(u.sum(), rel=1e-5)
    # <Gu, v> == <u, Gv>: the operator is symmetric, which the energy decrease relies on
    assert float(np.vdot(op(u), v)) == pytest.approx(float(np.vdot(u, op(v))), rel=1e-4)


def test_gaussian_matches_exact_dct_solution(rng):
    u = (rng.random((64, 80)) > 0.5).astype(np.float64)
    gaussian = HeatOperator(u.shape, 4.5, variant="gaussian", dtype=np.float64)(u)
    dct = HeatOperator(u.shape, 4.5, variant="dct", dtype=np.float64)(u)
    np.testing.assert_allclose(gaussian, dct, atol=2e-3)


def test_dct_is_the_neumann_heat_semigroup():
    # the cosine mode cos(pi k (x + 1/2) / N) decays exactly as exp(-tau (pi k / (N h))^2)
    n, k, h, tau = 50, 3, 0.5, 0.2
    x = np.arange(n)
    mode = np.cos(np.pi * k * (x + 0.5) / n)[:, None] * np.ones((1, 8))
    out = HeatOperator(mode.shape, tau, spacing=(h, 1.0), variant="dct", dtype=np.float64)(mode)
    np.testing.assert_allclose(out, mode * np.exp(-tau * (np.pi * k / (n * h)) ** 2), atol=1e-12)


def test_semigroup_property():
    u = np.zeros((64, 64))
    u[20:40, 25:30] = 1
    twice = heat_step(heat_step(u, 2.0, variant="dct"), 3.0, variant="dct")
    once = heat_step(u, 5.0, variant="dct")
    np.testing.assert_allclose(twice, once, atol=1e-5)


def test_anisotropic_spacing_is_physical():
    u = np.zeros((21, 61, 61), dtype=np.float32)
    u[10, 30, 30] = 1
    out = HeatOperator(u.shape, 12.5, spacing=(5.0, 1.0, 1.0), variant="dct")(u)
    # sigma = 5 physical units: one voxel along z (spacing 5), five along y and x
    profile_z = out[:, 30, 30] / out[10, 30, 30]
    profile_y = out[10, :, 30] / out[10, 30, 30]
    assert profile_z[11] == pytest.approx(profile_y[35], rel=1e-2)  # sampling at 1 voxel per sigma


def test_invalid_tau_is_refused():
    with pytest.raises(ValueError, match="tau"):
        heat_step(np.ones((4, 4)), -1.0)
    with pytest.raises(ValueError, match="variant"):
        HeatOperator((4, 4), 1.0, variant="fft")


def test_input_not_modified():
    u = np.zeros((16, 16))
    u[4:8, 4:8] = 1
    before = u.copy()
    heat_step(u, 2.0)
    np.testing.assert_array_equal(u, before)



@pytest.mark.parametrize("shape, sigma", [
    ((64, 80), (2.0, 3.0)),
    ((10, 12), (3.0, 3.0)),          # kernels longer than the axes: repeated reflection
    ((5, 40, 50), (0.3, 2.0, 2.5)),  # thick slices
    ((1, 30, 30), (0.5, 2.0, 2.0)),  # a single slice
    ((7, 9, 11), (0.01, 1.0, 0.02)),  # negligible blur along two axes
])
def test_opencv_blur_equals_scipy_reflect_gaussian(shape, sigma, rng):
    """gaussian_blur goes through OpenCV for speed; it must be scipy's Gaussian, borders included."""
    u = rng.random(shape).astype(np.float32)
    expected = ndimage.gaussian_filter(u, [s if s >= 0.05 else 0 for s in sigma], mode="reflect", truncate=4.0)
    np.testing.assert_allclose(gaussian_blur(u, sigma), expected, atol=1e-6)


@pytest.mark.parametrize("shape", [(30,), (3, 4, 5, 6)])
def test_other_dimensions_are_refused_with_a_clear_error(shape):
    with pytest.raises(ValueError, match="2D or 3D"):
        heat_step(np.ones(shape), 1.0, variant="gaussian")
