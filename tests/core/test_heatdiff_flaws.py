"""One regression test per flaw measured in heatdiff 0.1.3 (design.md section 2)."""

import subprocess
import sys

import numpy as np
import pytest

import napari_heatseg as hs
from napari_heatseg.core.heat import HeatOperator, heat_step


def disk(shape, centre, radius):
    grid = np.indices(shape)
    return sum((g - c) ** 2 for g, c in zip(grid, centre)) < radius**2


def noisy(mask, seed=0, noise=0.2):
    return mask + np.random.default_rng(seed).normal(0, noise, mask.shape)


def test_package_imports_in_a_fresh_interpreter():
    # heatdiff: ModuleNotFoundError heatdiff.image on import
    code = "import napari_heatseg as hs; print(hs.methods()[0])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "heat"


@pytest.mark.parametrize("scale", [1 / 255, 1.0, 255.0, 65535.0])
def test_intensity_scale_does_not_matter(scale):
    # heatdiff: on [0, 1] data the mask shrinks to nothing, then NaN, "converged"
    truth = disk((64, 64), (32, 32), 14)
    start = disk((64, 64), (32, 32), 5).astype(np.uint8)
    labels = hs.segment(noisy(truth) * scale, start, scope="all")
    assert labels.dtype == np.uint8
    assert np.mean((labels > 0) == truth) > 0.98


def test_diffusion_width_does_not_depend_on_image_size():
    # heatdiff: kernel length shape[0] // 5 gives sigma 8 / 17 / 33 px at N = 256 / 512 / 1024
    sigmas = {n: HeatOperator((n, n), 2.0).sigma for n in (256, 512, 1024)}
    assert len(set(sigmas.values())) == 1
    # and the same object gets the same mask on a small and a large canvas
    small = noisy(disk((64, 64), (32, 32), 12))
    large = np.pad(small, 96, mode="reflect")
    start_small = disk((64, 64), (32, 32), 4).astype(np.uint8)
    start_large = np.pad(start_small, 96)
    a = hs.segment(small, start_small, scope="object")
    b = hs.segment(large, start_large, scope="object")[96:-96, 96:-96]
    assert np.mean(a == b) > 0.995


def test_no_drift_over_iterations():
    # heatdiff: even-length kernels shift a disk about 1 px per iteration
    truth = disk((96, 96), (47.5, 47.5), 20)  # centred on the grid: symmetric under flips
    image = noisy(truth, noise=0.3)
    image = (image + image[::-1] + image[:, ::-1] + image[::-1, ::-1]) / 4  # symmetric noise
    for coarse_to_fine in (False, True):
        for step in hs.evolve(image, truth.astype(np.uint8), scope="all", coarse_to_fine=coarse_to_fine):
            np.testing.assert_allclose(np.argwhere(step.labels).mean(axis=0), (47.5, 47.5), atol=1e-9)


def test_border_reflects_instead_of_absorbing():
    # heatdiff: zero padding, an all-ones mask gets 0.26 in the corners after one step
    out = heat_step(np.ones((64, 64)), 8.0)
    assert out.min() > 0.9999
    # a start touching the border keeps touching it
    truth = np.zeros((64, 64), bool)
    truth[:, :20] = True
    labels = hs.segment(noisy(truth), truth.astype(np.uint8), scope="all")
    assert labels[:, 0].all() and labels[0, :15].all()


def test_empty_class_and_nan_pixel_never_give_nan():
    # heatdiff: an empty class or one NaN pixel gives an all-NaN result
    image = noisy(disk((48, 48), (24, 24), 10))
    image[5, 5] = np.nan
    everything = np.ones((48, 48), np.uint8)  # the background phase starts empty
    labels = hs.segment(image, everything, scope="all")
    assert labels.dtype == np.uint8 and set(np.unique(labels)) <= {0, 1}
    for step in hs.evolve(image, everything, scope="all"):
        assert np.isfinite(step.energy)


def test_rgb_3d_and_non_square_are_supported_and_transposition_equivariant():
    # heatdiff: RGB, 3D and non-square input raise or depend on the transposition
    truth = disk((40, 70), (20, 30), 12)
    rgb = np.stack([noisy(truth, seed=s) for s in range(3)], axis=-1)
    start = disk((40, 70), (20, 30), 4).astype(np.uint8)
    a = hs.segment(rgb, start, channel_axis=-1, scope="all")
    b = hs.segment(rgb.transpose(1, 0, 2), start.T, channel_axis=-1, scope="all")
    assert np.mean((a > 0) == truth) > 0.98
    np.testing.assert_array_equal(a.T, b)
    volume = noisy(disk((20, 30, 40), (10, 15, 20), 8))
    assert hs.segment(volume, disk((20, 30, 40), (10, 15, 20), 3).astype(np.uint8)).any()


def test_energies_are_an_energy_not_mask_changes():
    # heatdiff: the returned "energies" are relative mask changes and not monotone
    image = noisy(disk((64, 64), (32, 32), 14), noise=0.5)
    start = np.zeros((64, 64), np.uint8)
    start[10:54, 10:54] = 1
    energies = [s.energy for s in hs.evolve(image, start, scope="all", coarse_to_fine=False)]
    assert len(energies) > 2 and np.all(np.diff(energies) <= 0)
    assert energies[0] != 0  # the start already has an energy; a change measure would be 0 or undefined


def test_arguments_are_never_mutated():
    # heatdiff: helpers write Neumann borders into their arguments
    image = noisy(disk((48, 48), (24, 24), 10))
    start = disk((48, 48), (24, 24), 4).astype(np.uint8)
    image_copy, start_copy = image.copy(), start.copy()
    for _ in hs.evolve(image, start, scope="all"):
        pass
    heat_step(image, 2.0)
    np.testing.assert_array_equal(image, image_copy)
    np.testing.assert_array_equal(start, start_copy)
