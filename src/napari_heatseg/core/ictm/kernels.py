r"""Compiled per-voxel loops of the two-phase threshold step (numba).

A two-phase step with grey quadratic models decides every voxel by the sign of

.. math::

    \psi = (A f + B) f + C - s\,(2\,G u - 1)

(no data term on invalid voxels), and its energy needs ``<u, G u>`` and ``<1, G u>``. In
numpy that is a dozen passes over the image, each reading and writing whole arrays; here it
is one vectorised loop for the decision and one for the sums. The decision does the same
float32 operations in the same order as the numpy path, so it is the same bit for bit; the
sums are float64.
"""

import numba
import numpy as np

__all__ = ["two_phase_decision", "two_phase_sums", "warm_up"]


@numba.njit(cache=True, nogil=True)
def _decide(f, valid, diffused, allowed, square, linear, constant, pull, scale, out):
    for i in range(f.size):
        data = (f[i] * square + linear) * f[i] + constant
        if valid is not None:
            data = data if valid[i] else np.float32(0.0)
        joins = (data - diffused[i] * pull) + scale < np.float32(0.0)
        if allowed is not None:
            joins = joins & allowed[i]
        out[i] = joins


@numba.njit(cache=True, nogil=True, fastmath={"reassoc"})
def _sums(diffused, phases):
    own = 0.0
    total = 0.0
    for i in range(diffused.size):
        value = np.float64(diffused[i])
        total += value
        own += value if phases[i] == 1 else 0.0
    return own, total


def two_phase_decision(f, valid, diffused, allowed, coefficients, scale, dtype=np.uint8):
    """Phase map (0/1) where ``psi < 0`` (and ``allowed``), for arrays of one shape.

    Parameters
    ----------
    f : ndarray of float32
        Grey image (0 on invalid voxels).
    valid, allowed : ndarray of bool or None
        Voxels with a data term (None: all); where the label phase may be (None: anywhere).
    diffused : ndarray of float32
        ``G u`` of the label phase.
    coefficients : (3,) float32
        ``(A, B, C)`` of ``lam (D_1 - D_0)`` (:func:`~.models.grey_difference`).
    scale : float32
        The boundary weight ``s``.
    """
    out = np.empty(f.shape, dtype)
    square, linear, constant = (np.float32(c) for c in coefficients)
    scale = np.float32(scale)
    _decide(f.ravel(), None if valid is None else valid.ravel(), diffused.ravel(),
            None if allowed is None else allowed.ravel(), square, linear, constant,
            np.float32(2 * scale), scale, out.reshape(-1))
    return out


def two_phase_sums(diffused, phases):
    """``(<u, G u>, <1, G u>)`` for ``u`` the indicator of phase 1 in ``phases``, float64."""
    return _sums(diffused.ravel(), phases.ravel())


def warm_up():
    """Compile the loops, or load them from numba's disk cache, for every kind of input a
    run gives them, on one-voxel arrays (about half a second, once per process; later calls
    cost microseconds). The napari widget calls this on a thread when an image is picked,
    ahead of Run, so the first run of a session is not held up."""
    voxel = np.zeros(1, np.float32)
    mask = np.ones(1, bool)
    for valid in (None, mask):
        for allowed in (None, mask):
            two_phase_decision(voxel, valid, voxel, allowed, (0.0, 0.0, 0.0), 1.0)
    two_phase_sums(voxel, np.zeros(1, np.uint8))
