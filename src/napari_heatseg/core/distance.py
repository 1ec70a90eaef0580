r"""Exact Euclidean distance to the nearest marked voxel, with voxel spacing, in linear time.

The squared distance :math:`D(x) = \min_{p \in P} \sum_d h_d^2 (x_d - p_d)^2` to a set of
voxels :math:`P` separates over the axes, so it is computed one axis at a time: along each
line, :math:`D_{new}(x) = \min_q \left(D_{old}(q) + h^2 (x - q)^2\right)`, the lower envelope
of parabolas rooted at every voxel of the line [1]_. Each pass is linear in the number of
voxels, where ``scipy.ndimage.distance_transform_edt`` also builds the nearest voxel's
coordinates (the feature transform); on the object scope's large boxes this is several
times faster and needs no index arrays. The distances are the same up to the last bits of
rounding.

References
----------
.. [1] P. F. Felzenszwalb, D. P. Huttenlocher, "Distance transforms of sampled functions",
   Theory of Computing 8, 2012. :DOI:`10.4086/toc.2012.v008a019`
"""

import numba
import numpy as np
from scipy import ndimage

__all__ = ["distance_to"]


def distance_to(features, spacing=None):
    """Euclidean distance from every voxel to the nearest ``True`` voxel of ``features``.

    The same as ``scipy.ndimage.distance_transform_edt(~features, sampling=spacing)`` (up to
    rounding), in float64. Without any ``True`` voxel the answer is scipy's.

    Parameters
    ----------
    features : ndarray of bool
        The voxels to measure the distance to (1, 2 or 3 axes).
    spacing : sequence of float, optional
        Voxel size per axis (default 1).
    """
    features = np.asarray(features, dtype=bool)
    spacing = (1.0,) * features.ndim if spacing is None else tuple(float(h) for h in spacing)
    if features.ndim > 3 or not features.any():
        return ndimage.distance_transform_edt(~features, sampling=spacing)
    squared = np.where(features, 0.0, np.inf).reshape((1,) * (3 - features.ndim) + features.shape)
    steps = (1.0,) * (3 - features.ndim) + spacing
    for axis in range(3):
        if squared.shape[axis] > 1:
            _envelope_along(np.moveaxis(squared, axis, -1), steps[axis] ** 2)
    return np.sqrt(squared, out=squared).reshape(features.shape)


@numba.njit(cache=True, nogil=True)
def _envelope_along(squared, h2):
    """Replace every line along the last axis of the 3D view ``squared`` by its lower
    envelope ``min_q squared[q] + h2 (x - q)^2`` (in place; ``inf`` marks no site)."""
    n0, n1, n = squared.shape
    line = np.empty(n)
    roots = np.empty(n, np.int64)  # the sites whose parabolas form the envelope
    bounds = np.empty(n + 1)  # where each of them starts being the lowest
    for i in range(n0):
        for j in range(n1):
            for q in range(n):
                line[q] = squared[i, j, q]
            k = -1
            for q in range(n):
                if line[q] == np.inf:
                    continue
                while k >= 0:
                    p = roots[k]
                    cross = ((line[q] + h2 * q * q) - (line[p] + h2 * p * p)) / (2.0 * h2 * (q - p))
                    if cross > bounds[k]:
                        break
                    k -= 1
                k += 1
                roots[k] = q
                bounds[k] = -np.inf if k == 0 else cross
            if k < 0:
                continue  # no site on this line: it stays at inf
            bounds[k + 1] = np.inf
            m = 0
            for x in range(n):
                while bounds[m + 1] < x:
                    m += 1
                p = roots[m]
                squared[i, j, x] = line[p] + h2 * (x - p) * (x - p)
