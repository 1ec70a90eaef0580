"""A small zarr volume pair (a bright ball in noise, and a cube start at its centre) for the
tests of chunked runs, batch and file safety."""

import numpy as np
import pytest


def zarr_ball_volume(image_path, start_path, shape, radius, start_half, chunks, seed):
    """Write an int16 image (500, a ball of ``radius`` voxels 400 brighter, noise of 60) and a
    uint8 start (a cube ``start_half`` voxels around the centre per axis, low side inclusive)
    as zarr arrays of ``chunks``; returns the two paths."""
    zarr = pytest.importorskip("zarr")
    rng = np.random.default_rng(seed)  # the tests' answers depend on it
    zz, yy, xx = np.mgrid[tuple(slice(0, n) for n in shape)]
    centre = [n // 2 for n in shape]
    ball = (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 < radius**2
    image = 500 + 400 * ball + rng.normal(0, 60, zz.shape)
    start = np.zeros(shape, np.uint8)
    start[tuple(slice(c - lo, c + hi) for c, (lo, hi) in zip(centre, start_half))] = 1
    for path, array in ((image_path, image.astype(np.int16)), (start_path, start)):
        zarr.create_array(store=str(path), shape=array.shape, chunks=chunks, dtype=array.dtype)[:] = array
    return image_path, start_path
