r"""The heat semigroup of a contrast-weighted graph Laplacian: diffusion that slows across edges.

On the voxel grid with its axis neighbours, let the edge between voxels :math:`i` and
:math:`j` (one step along axis :math:`d`, spacing :math:`h_d`) carry the weight

.. math::

    w_{ij} = \frac{1 - e + e \exp(-\beta \|f_i - f_j\|^2)}{h_d^2}, \qquad
    \beta = \frac{1}{2 \langle \|f_i - f_j\|^2 \rangle},

the contrast-sensitive n-link of GrabCut [1]_ (``beta`` from the mean contrast over all
neighbour pairs, so it is free of the intensity scale), mixed with the plain grid by the
strength ``e`` in [0, 1]. The graph Laplacian :math:`(L u)_i = \sum_j w_{ij} (u_i - u_j)`
has no edges out of the grid (reflecting borders), so :math:`L 1 = 0`, and it is symmetric
positive semi-definite with spectrum in :math:`[0, \lambda]`, :math:`\lambda \le 2 \max_i
\sum_j w_{ij}` (Gershgorin). With :math:`e = 0` it is the finite-difference Laplacian, whose
semigroup :math:`\exp(-\tau L)` is the discrete Gaussian of variance :math:`2 \tau / h_d^2`
voxels squared: the plain heat kernel of :mod:`.heat`.

The operator applies :math:`K = q(L)^2` with :math:`q` the Chebyshev expansion of
:math:`x \mapsto \exp(-\tau x / 2)` on :math:`[0, \lambda]` [2]_, truncated where its terms
fall below ``tol`` and scaled so that :math:`q(0) = 1`. Whatever the truncation, ``K`` is
exactly symmetric and positive semi-definite (a square of a symmetric matrix), conserves
mass (:math:`1^T K u = q(0)^2 1^T u`) and keeps constants (:math:`K 1 = 1`), which is what
threshold dynamics needs for its energy never to increase [3]_; the truncation only decides
how closely ``K`` follows :math:`\exp(-\tau L)`.

References
----------
.. [1] C. Rother, V. Kolmogorov, A. Blake, "GrabCut: interactive foreground extraction using
   iterated graph cuts", ACM Trans. Graphics 23(3), 2004.
.. [2] H. Tal-Ezer, R. Kosloff, "An accurate and efficient scheme for propagating the time
   dependent Schrödinger equation", J. Chem. Phys. 81, 1984 (Chebyshev series of the
   exponential, coefficients from modified Bessel functions).
.. [3] D. Wang, H. Li, X. Wei, X.-P. Wang, "An efficient iterative thresholding method for
   image segmentation", J. Comput. Phys. 350, 2017.
"""

import numba
import numpy as np
from scipy.special import ive

__all__ = ["EdgeHeatOperator", "contrast_weights"]

_MAX_TERMS = 400  # a diffusion wider than this many Chebyshev terms is refused


def contrast_weights(image, spacing, edge):
    """The edge weights ``w`` of the grid, one array per axis (``(n_d - 1)`` long along ``d``).

    Parameters
    ----------
    image : ndarray
        Spatial axes then one channel axis (the prepared image).
    spacing : tuple of float
        Voxel size per spatial axis.
    edge : float in [0, 1]
        Strength of the contrast weighting (0: the plain grid).
    """
    spatial = image.shape[:-1]
    squared = []
    for axis in range(len(spatial)):
        if spatial[axis] < 2:
            squared.append(np.zeros(spatial[:axis] + (0,) + spatial[axis + 1:], np.float32))
            continue
        step = np.diff(image, axis=axis)
        squared.append(np.einsum("...c,...c->...", step, step, dtype=np.float32))
    pairs = sum(s.size for s in squared)
    mean = sum(float(np.sum(s, dtype=np.float64)) for s in squared) / max(pairs, 1)
    beta = 0.5 / mean if mean > 0 else 0.0
    weights = []
    for s, h in zip(squared, spacing):
        w = (1.0 - edge) + edge * np.exp(-beta * s, dtype=np.float32) if edge else np.ones_like(s)
        weights.append(np.ascontiguousarray(w / (h * h), dtype=np.float32))
    return weights


class EdgeHeatOperator:
    """``K ~ exp(-tau L_w)`` on a fixed grid and image, ready to apply many times.

    Parameters
    ----------
    image : ndarray
        Spatial axes (2 or 3) then one channel axis.
    tau : float
        Diffusion time in the spacing's units squared (as :class:`~napari_heatseg.core.heat.HeatOperator`).
    spacing : tuple of float
        Voxel size per spatial axis.
    edge : float in [0, 1]
        Strength of the contrast weighting (:func:`contrast_weights`).
    tol : float
        Chebyshev terms below ``tol`` (relative to the first) are dropped.
    """

    def __init__(self, image, tau, spacing, edge, tol=1e-4):
        if image.ndim - 1 not in (2, 3):
            raise ValueError(f"the edge-aware heat works on 2D or 3D grids, got spatial shape {image.shape[:-1]}.")
        self.shape = image.shape[:-1]
        weights = contrast_weights(image, spacing, edge)
        if len(weights) == 2:  # one plane: a 3D grid of one slice
            weights = [np.zeros((0,) + self.shape, np.float32)] + [w[np.newaxis] for w in weights]
        # each axis's weights padded with a zero edge at both ends: the grid's border has no
        # edge out, so the kernel needs no branch there
        self._weights = tuple(np.pad(w, [(1, 1) if axis == a else (0, 0) for a in range(3)])
                              for axis, w in enumerate(weights))
        degree = sum(w[tuple(slice(None, -1) if a == axis else slice(None) for a in range(3))]
                     + w[tuple(slice(1, None) if a == axis else slice(None) for a in range(3))]
                     for axis, w in enumerate(self._weights))
        self.bound = max(float(2.0 * degree.max()), 1e-12)  # lambda_max <= twice the largest degree
        a = 0.25 * tau * self.bound  # q(x) = exp(-tau x / 2), x = bound (1 + y) / 2: exp(-a) exp(-a y)
        terms = np.arange(_MAX_TERMS)
        scaled = ive(terms, a)  # I_k(a) e^{-a}: the Chebyshev coefficients of exp(-a (1 + y))
        kept = np.flatnonzero(scaled >= tol * scaled[0])
        n_terms = int(kept[-1]) + 1
        if n_terms >= _MAX_TERMS:
            raise ValueError(f"`tau` = {tau!r} is too wide for the edge-aware heat on this grid; use edge=0.")
        signs = (-1.0) ** terms[:n_terms]
        coefficients = 2.0 * scaled[:n_terms] * signs
        coefficients[0] = scaled[0]
        coefficients /= np.sum(coefficients * signs)  # q(0) = 1, as T_k(-1) = (-1)^k
        self.coefficients = coefficients.astype(np.float32)
        self._alpha = np.float32(2.0 / self.bound)
        self._grid = degree.shape
        self._terms = None  # two padded work arrays for the recurrence, made at the first call
        self._half = None  # q(L) u, between the two halves

    def __call__(self, u, out=None):
        """Return ``K u = q(L) q(L) u`` (float32; ``u`` is not modified)."""
        if self._terms is None:
            padded = tuple(n + 2 for n in self._grid)
            self._terms = (np.zeros(padded, np.float32), np.zeros(padded, np.float32))
            self._half = np.empty(self._grid, np.float32)
        half = self._half
        self._apply_q(np.asarray(u).reshape(self._grid), half)
        result = np.empty(self._grid, np.float32) if out is None else out.reshape(self._grid)
        self._apply_q(half, result)
        return result.reshape(self.shape)

    def _apply_q(self, v, out):
        """``out = q(L) v = sum_k c_k T_k(Y) v``, ``Y = alpha L - I``, by the three-term
        recurrence ``T_{k+1} = 2 Y T_k - T_{k-1}`` (``T_0 = v``, ``T_1 = Y v``)."""
        before, current = self._terms
        before[1:-1, 1:-1, 1:-1] = v
        np.multiply(before[1:-1, 1:-1, 1:-1], self.coefficients[0], out=out)
        one, two, zero = np.float32(1.0), np.float32(2.0), np.float32(0.0)
        for k, c in enumerate(self.coefficients[1:], start=1):
            if k == 1:  # T_1 = Y T_0 (into the second array)
                _recurrence_term(before, current, out, *self._weights, self._alpha, one, zero, c)
                before, current = current, before
            else:  # T_k = 2 Y T_{k-1} - T_{k-2}, written over T_{k-2}
                _recurrence_term(before, current, out, *self._weights, self._alpha, two, one, c)
                before, current = current, before


@numba.njit(cache=True, nogil=True)
def _recurrence_term(last, target, out, wz, wy, wx, alpha, a, b, c):
    """``target = a (alpha L last - last) - b target`` and ``out += c target`` in one pass.

    ``last`` and ``target`` are padded by one voxel on every side (kept at 0); the padded
    weights are 0 across the border, so ``L`` needs no branch there.
    """
    nz, ny, nx = out.shape
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                centre = last[z + 1, y + 1, x + 1]
                laplacian = (wz[z, y, x] * (centre - last[z, y + 1, x + 1])
                             + wz[z + 1, y, x] * (centre - last[z + 2, y + 1, x + 1])
                             + wy[z, y, x] * (centre - last[z + 1, y, x + 1])
                             + wy[z, y + 1, x] * (centre - last[z + 1, y + 2, x + 1])
                             + wx[z, y, x] * (centre - last[z + 1, y + 1, x])
                             + wx[z, y, x + 1] * (centre - last[z + 1, y + 1, x + 2]))
                term = a * (alpha * laplacian - centre) - b * target[z + 1, y + 1, x + 1]
                target[z + 1, y + 1, x + 1] = term
                out[z, y, x] += c * term
