"""The grids of the heat method: the coarse-to-fine stages and everything one grid holds.

Each :class:`Level` is one grid: its image, valid mask, scope arrays, heat operator and the
one place where the diffusion time becomes that grid's operator and pull scale
``sqrt(pi / tau)``. :func:`coarse_levels` builds the coarser grids of the continuation
(large ``tau`` first, :func:`stages`), each from the next finer one.
"""

import numpy as np

from ..edge_heat import edge_heat_operator
from ..heat import HeatOperator, separable_filter
from ..models import moment_change, phase_moments

__all__ = ["Level", "coarse_levels", "resample", "stages"]


class Level:
    """Everything the iteration needs on one grid.

    Parameters
    ----------
    image, valid : ndarray
        The grid's image (channels last) and the voxels that carry data.
    start : ndarray of int
        The start's phases on this grid.
    scope : :class:`~napari_heatseg.core.scope.Scope`
        The run's scope on this grid.
    spacing : tuple of float
        Voxel size in finest voxels.
    tau : float
        Diffusion time in finest voxels squared: the heat operator is ``G_tau`` and the
        boundary term's pull ``scale = sqrt(pi / tau)``.
    edge : float
        Strength of the contrast weighting of the heat operator: 0 diffuses with the plain
        Gaussian ``G_tau``, more with ``exp(-tau L_w)``
        (:func:`~napari_heatseg.core.edge_heat.edge_heat_operator`), which diffuses less
        across image edges.
    domain : ndarray of bool, optional
        Where labels may go (None: everywhere).
    variant : {'auto', 'gaussian', 'dct'}
        The heat operator's variant (:class:`~napari_heatseg.core.heat.HeatOperator`).
    """

    def __init__(self, image, valid, start, scope, spacing, tau, edge, domain=None, variant="auto"):
        self.image = np.ascontiguousarray(image)  # a crop's view would be copied by every flat look-up
        self.domain = domain  # where labels may go (None: everywhere)
        self.valid = np.ascontiguousarray(valid) if domain is None else valid & domain
        self.invalid = None if self.valid.all() else ~self.valid  # pixels without a data term
        self.start = start
        self.scope = scope
        self.spacing = spacing
        self.heat = (edge_heat_operator(self.image, tau, spacing, edge) if edge
                     else HeatOperator(start.shape, tau, spacing, variant))
        self.scale = np.float32(np.sqrt(np.pi / tau))
        self._moments = None
        self._scratch = {}
        self.kept = {}  # arrays derived once per grid (e.g. a scope's per-label region)

    def scratch(self, name, dtype=np.float32):
        """An array of the grid's shape kept for reuse by every iteration (allocating a large
        array anew each time costs as much as a pass over it)."""
        if name not in self._scratch:
            self._scratch[name] = np.empty(self.start.shape, dtype)
        return self._scratch[name]

    def moments(self, phases, n_phases):
        """:func:`~napari_heatseg.core.models.phase_moments` of ``phases``: computed once, then kept up to date by
        :meth:`move` (only a band of voxels changes between iterations)."""
        if self._moments is None:
            counted = phases if self.invalid is None else np.where(self.valid, phases, n_phases)
            self._moments = phase_moments(self.image.reshape(-1, self.image.shape[-1]), counted.ravel(), n_phases)
        return self._moments

    def move(self, moved, old, new, n_phases):
        """Update the moments for the voxels at flat indices ``moved`` going from phase map
        ``old`` to ``new`` (float64 sums: the drift is at rounding level)."""
        if self._moments is None:
            return
        if self.invalid is not None:
            moved = moved[self.valid.ravel()[moved]]
        if moved.size:
            values = self.image.reshape(-1, self.image.shape[-1])[moved]
            change = moment_change(values, new.ravel()[moved], old.ravel()[moved], n_phases)
            self._moments = tuple(m + x for m, x in zip(self._moments, change))

    def inner(self, field, mask):
        """``<u, field>`` for the indicator ``u`` of ``mask``, in float64 (``field`` may be
        the scalar 1)."""
        if np.ndim(field) == 0:
            return float(field) * np.count_nonzero(mask)
        return float(np.sum(field, where=mask, dtype=np.float64))

    def diffuse(self, mask, out=None):
        """The heat operator applied to the indicator ``u`` of one phase's boolean ``mask``."""
        return self.heat(mask, out)



def resample(array, shape, order=1):
    """Resample the leading axes of ``array`` to ``shape`` on a pixel-edge-aligned grid.

    The grid is symmetric, so flipping or transposing the input flips or transposes the
    output exactly, to the bit (a block grid padded at one end would not be). Whole-number
    factors, the pyramid's case, are done by slicing, as ``scipy.ndimage.zoom`` would
    compute them: a coarse voxel of ``f`` fine ones sits at their centre (the mean of the
    middle two for an even ``f``, order 1), and a fine voxel takes its coarse voxel's value
    (order 0). Other sizes (a region's bounding box, an image not divisible by the
    factor) go axis by axis through :func:`_resample_axis`, which computes the same
    grid-mode interpolation as ``zoom`` with exact positions.
    """
    if order == 1 and all(n % m == 0 for n, m in zip(array.shape, shape)):
        for axis, (n, m) in enumerate(zip(array.shape, shape)):
            f = n // m
            if f > 1:
                middle = [slice(None)] * array.ndim
                middle[axis] = slice(f // 2, None, f)
                if f % 2:
                    array = array[tuple(middle)]
                else:
                    before = list(middle)
                    before[axis] = slice(f // 2 - 1, None, f)
                    array = (array[tuple(before)] + array[tuple(middle)]) * array.dtype.type(0.5)
        return np.ascontiguousarray(array)
    if order == 0 and all(m % n == 0 for n, m in zip(array.shape, shape)):
        for axis, (n, m) in enumerate(zip(array.shape, shape)):
            if m > n:
                array = np.repeat(array, m // n, axis=axis)
        return np.ascontiguousarray(array)
    out_dtype = array.dtype
    for axis, m in enumerate(shape):
        array = _resample_axis(array, axis, m, order)
    return np.ascontiguousarray(array, dtype=out_dtype)


def _resample_axis(array, axis, m, order):
    """Resample one axis of length ``n`` to ``m`` voxels (grid mode, edge values beyond the ends).

    Output voxel ``j``'s centre lies at input position ``x = ((2j + 1) n - m) / 2m``; its
    integer numerator gives the two neighbours ``i = floor(x)``, ``i + 1`` and the weights
    ``(2m - r) / 2m`` and ``r / 2m`` (``r`` the numerator's remainder) exactly, so the
    mirrored voxel ``m - 1 - j`` gets the same two products, swapped: flips commute to the
    bit, where ``scipy.ndimage.zoom``'s rounded positions break ties one way. Order 1 sums
    in float64 (like ``zoom``) and keeps ``array``'s dtype at the end (see
    :func:`resample`). Order 0 takes the nearer neighbour; at an exact tie (a fine centre
    on a coarse edge) the smaller value, the same whichever way the axis runs.
    """
    n = array.shape[axis]
    if n == m:
        return array
    numerator = (2 * np.arange(m, dtype=np.int64) + 1) * n - m
    lower, remainder = np.divmod(numerator, 2 * m)
    below = np.take(array, np.clip(lower, 0, n - 1), axis=axis)
    above = np.take(array, np.clip(lower + 1, 0, n - 1), axis=axis)
    along = [1] * array.ndim
    along[axis] = m
    remainder = remainder.reshape(along)
    if order == 0:
        return np.where(remainder < m, below, np.where(remainder > m, above, np.minimum(below, above)))
    return below * ((2 * m - remainder) / (2 * m)) + above * (remainder / (2 * m))


def _box_filter(array, factors):
    """Mean over odd boxes (symmetric, so flips commute) spanning each downsampling factor."""
    sizes = [f + 1 if f > 1 else 1 for f in factors]
    return separable_filter(array, [np.full(n, 1.0 / n) for n in sizes])


def _downsample(image, factors, shape):
    """Anti-aliased resampling of an image (channels last) onto a coarser grid."""
    channels = [_box_filter(image[..., c], factors) for c in range(image.shape[-1])]
    return resample(np.stack(channels, axis=-1), shape)


def _change_grid(phases, n_labels, shape, factors):
    """Phases on a coarser grid: each voxel takes the phase with the most presence.

    Every label present before stays present (at its strongest voxel), so a small mark is
    never lost on a coarse grid.
    """
    labels = [resample(_box_filter(phases == k, factors), shape) for k in range(1, n_labels + 1)]
    best = 1.0 - (labels[0] if n_labels == 1 else sum(labels))  # the phases sum to one
    out = np.zeros(shape, phases.dtype)
    for k, presence in enumerate(labels, start=1):  # the first of equals wins, as argmax
        better = presence > best
        out[better] = k
        if k < n_labels:
            best = np.maximum(best, presence)
    for k, presence in enumerate(labels, start=1):
        if not (out == k).any() and (phases == k).any():
            out[np.unravel_index(np.argmax(presence), shape)] = k
    return out


def coarse_levels(prepared, scope, domain, spacing, tau, edge, factors_per_stage, taus):
    """One :class:`Level` per coarse stage (coarsest first), each grid made from the next finer one.

    Building from fine to coarse means only the finest coarse grid is filtered at full
    resolution. Every label, seed label and background mark present before stays present
    on a coarse grid (at its strongest voxel), so a small mark is never lost.
    """
    image, valid, phases = prepared.image, prepared.valid.astype(np.float32), prepared.phases
    region = None if domain is None else domain.astype(np.float32)
    finer = (1,) * phases.ndim
    levels = []
    for factors, stage_tau in zip(reversed(factors_per_stage), reversed(taus)):
        shape = tuple(max(1, round(n / f)) for n, f in zip(prepared.phases.shape, factors))
        step = [f // g for f, g in zip(factors, finer)]
        image = _downsample(image, step, shape)
        valid = resample(valid, shape)
        phases = _change_grid(phases, prepared.n_labels, shape, step)
        scope = _coarse_scope(scope, shape, step)
        region = None if region is None else resample(region, shape)
        level_spacing = tuple(h * n / m for h, n, m in zip(spacing, prepared.phases.shape, shape))
        levels.append(Level(image, valid > 0.999, phases, scope, level_spacing, stage_tau, edge,
                            None if region is None else region > 0))
        finer = factors
    return levels[::-1]


def _coarse_scope(scope, shape, factors):
    """``scope`` on a coarser grid: label maps by :func:`_change_grid`, the background where
    it covers most of a coarse voxel (and at least at its strongest one)."""
    coarse = scope.crop(...)
    for name in ("seeds", "marks", "region"):
        value = getattr(scope, name)
        if value is not None:
            setattr(coarse, name, _change_grid(value, scope.n_labels, shape, factors))
    if scope.background is not None:
        presence = resample(_box_filter(scope.background, factors), shape)
        coarse.background = presence >= 0.5
        coarse.background[np.unravel_index(np.argmax(presence), shape)] = True
    return coarse
def stages(shape, spacing, tau, coarsest=4):
    """Coarse-to-fine continuation: (factors per axis, tau) for each coarse stage.

    Stage ``f`` works on a grid ``f`` times coarser (only along axes finer than ``f``, so
    thick slices are never merged) with ``sigma`` ``f`` times larger. Large ``sigma`` lets
    regions appear or vanish far from the start (no local minimum at the pixel scale) and
    converges in few, cheap iterations; the finer stages only refine the boundary.
    """
    stages = []
    f = coarsest
    while f > 1:
        factors = tuple(2 ** int(np.floor(np.log2(max(1.0, f / h)))) for h in spacing)
        if max(factors) > 1 and min(n // k for n, k in zip(shape, factors)) >= 16:
            stages.append((factors, tau * f * f))
        f //= 2
    return stages
