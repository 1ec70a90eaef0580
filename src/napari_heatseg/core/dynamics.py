r"""Threshold dynamics with the heat semigroup (the iterative convolution-thresholding method).

Each label of the start is a phase with indicator :math:`u_i` (the background is phase 0).
The segmentation minimises

.. math::

    E(u) = \lambda \sum_i \int u_i D_i(f) + \sqrt{\pi / \tau} \sum_{i<j} \int \sqrt{w}\,u_i\,
           G_\tau (\sqrt{w}\,u_j),

where :math:`G_\tau` is the Neumann heat semigroup, :math:`D_i` the region model of phase
:math:`i` (:mod:`.models`) and :math:`w \in (0, 1]` an optional edge weight (1 away from
image edges). The second term tends to the (edge-weighted) boundary length as
:math:`\tau \to 0`. One iteration refits the models, computes

.. math::

    \phi_i = \lambda D_i - \sqrt{\pi/\tau}\,\sqrt{w}\,G_\tau(\sqrt{w}\,u_i)

and moves every pixel to the phase with the smallest :math:`\phi_i`. :math:`\sqrt{w} G
\sqrt{w}` is symmetric positive definite, so the interaction term is concave and this
linearise-and-minimise step never increases :math:`E`; a step that would (rounding, a
mixture model's subsampling, the connectivity of ``scope="object"``) ends the iteration
instead, so the reported energy is non-increasing by construction.

References
----------
.. [1] D. Wang, H. Li, X. Wei, X.-P. Wang, "An efficient iterative thresholding method for
       image segmentation", J. Comput. Phys. 350 (2017). :DOI:`10.1016/j.jcp.2017.08.020`
.. [2] S. Esedoglu, F. Otto, "Threshold dynamics for networks with arbitrary surface
       tensions", Comm. Pure Appl. Math. 68 (2015). :DOI:`10.1002/cpa.21527`
"""

from dataclasses import replace

import numpy as np
from scipy import ndimage

from .heat import HeatOperator, separable_filter
from .kernels import two_phase_decision, two_phase_sums
from .models import cost_differences, grey_difference, make_model

__all__ = ["default_parameters", "threshold_dynamics"]


def _check_real(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"`{name}` must be a real number, got {value!r} ({type(value).__name__}).")


def _check_positive(name, value, allow_zero=False):
    _check_real(name, value)
    ok = np.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = "zero or positive" if allow_zero else "positive"
        raise ValueError(f"`{name}` must be a finite {bound} number, got {value!r}.")


def _edge_weight(image, spacing, edge):
    """w = 1 - edge + edge / (1 + |grad f|^2 / kappa^2), kappa = median gradient magnitude."""
    if edge == 0:
        return None
    grad2 = np.zeros(image.shape[:-1], dtype=np.float32)
    for c in range(image.shape[-1]):
        smooth = ndimage.gaussian_filter(image[..., c], 1.0, mode="reflect")
        for axis, h in enumerate(spacing):
            if image.shape[axis] < 2:  # a single slice has no gradient across it
                continue
            grad2 += (np.gradient(smooth, axis=axis) / np.float32(h / min(spacing))) ** 2
    kappa2 = max(float(np.median(grad2)), 1e-6)
    return (1.0 - edge + edge / (1.0 + grad2 / kappa2)).astype(np.float32)


class _Level:
    """Everything the iteration needs on one grid."""

    def __init__(self, image, valid, start, spacing, tau, edge, domain=None):
        self.image = np.ascontiguousarray(image)  # a crop's view would be copied by every flat look-up
        self.domain = domain  # where labels may go (None: everywhere)
        self.valid = np.ascontiguousarray(valid) if domain is None else valid & domain
        self.invalid = None if self.valid.all() else ~self.valid  # pixels without a data term
        self.start = start
        self.spacing = spacing
        self.heat = HeatOperator(start.shape, tau, spacing)
        weight = _edge_weight(image, spacing, edge)
        self.sqrt_w = None if weight is None else np.sqrt(weight)
        self.ones = np.float32(1.0) if weight is None else self.diffuse(np.ones(start.shape, bool))
        self.total_ones = start.size if weight is None else float(np.sum(self.ones, dtype=np.float64))
        self._moments = None
        self._scratch = {}

    def scratch(self, name, dtype=np.float32):
        """An array of the grid's shape kept for reuse by every iteration (allocating a large
        array anew each time costs as much as a pass over it)."""
        if name not in self._scratch:
            self._scratch[name] = np.empty(self.start.shape, dtype)
        return self._scratch[name]

    def marked(self, label):
        """Where the start has ``label`` (computed once per grid)."""
        if ("marked", label) not in self._scratch:
            np.equal(self.start, label, out=self.scratch(("marked", label), bool))
        return self._scratch[("marked", label)]

    def moments(self, phases, n_phases):
        """:func:`_phase_moments` of ``phases``: computed once, then kept up to date by
        :meth:`move` (only a band of voxels changes between iterations)."""
        if self._moments is None:
            counted = phases if self.invalid is None else np.where(self.valid, phases, n_phases)
            self._moments = _phase_moments(self.image.reshape(-1, self.image.shape[-1]), counted.ravel(), n_phases)
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
            change = _moment_change(values, new.ravel()[moved], old.ravel()[moved], n_phases)
            self._moments = tuple(m + x for m, x in zip(self._moments, change))

    def inner(self, field, mask):
        """``<u, field>`` for the indicator ``u`` of ``mask``, in float64 (``field`` may be
        the scalar 1)."""
        if np.ndim(field) == 0:
            return float(field) * np.count_nonzero(mask)
        return float(np.sum(field, where=mask, dtype=np.float64))

    def diffuse(self, mask, out=None):
        """sqrt(w) G (sqrt(w) u) for the indicator ``u`` of one phase's boolean ``mask``."""
        if self.sqrt_w is None:
            return self.heat(mask, out)
        return np.multiply(self.sqrt_w, self.heat(self.sqrt_w * mask), out=out)


def _resample(array, shape, order=1):
    """Resample the leading axes of ``array`` to ``shape`` on a pixel-edge-aligned grid.

    The grid is symmetric, so flipping or transposing the input flips or transposes the
    output (a block grid padded at one end would not be). Whole-number factors, the
    pyramid's case, are done by slicing, as ``scipy.ndimage.zoom`` would compute them: a
    coarse voxel of ``f`` fine ones sits at their centre (the mean of the middle two for an
    even ``f``, order 1), and a fine voxel takes its coarse voxel's value (order 0).
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
    zoom = [m / n for m, n in zip(shape, array.shape)] + [1] * (array.ndim - len(shape))
    return ndimage.zoom(array, zoom, order=order, mode="grid-mirror", grid_mode=True)


def _box_filter(array, factors):
    """Mean over odd boxes (symmetric, so flips commute) spanning each downsampling factor."""
    sizes = [f + 1 if f > 1 else 1 for f in factors]
    return separable_filter(array, [np.full(n, 1.0 / n) for n in sizes])


def _downsample(image, factors, shape):
    """Anti-aliased resampling of an image (channels last) onto a coarser grid."""
    channels = [_box_filter(image[..., c], factors) for c in range(image.shape[-1])]
    return _resample(np.stack(channels, axis=-1), shape)


def _change_grid(phases, n_labels, shape, factors):
    """Phases on a coarser grid: each voxel takes the phase with the most presence.

    Every label present before stays present (at its strongest voxel), so a small mark is
    never lost on a coarse grid.
    """
    labels = [_resample(_box_filter(phases == k, factors), shape) for k in range(1, n_labels + 1)]
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


def _coarse_grids(prepared, domain, factors_per_stage):
    """(image, valid, start, domain) on each coarse grid, each grid made from the next finer one.

    Stages come coarsest first; building from fine to coarse means only the finest
    coarse grid is filtered at full resolution.
    """
    image, valid, phases = prepared.image, prepared.valid.astype(np.float32), prepared.phases
    region = None if domain is None else domain.astype(np.float32)
    finer = (1,) * phases.ndim
    grids = []
    for factors in reversed(factors_per_stage):
        shape = tuple(max(1, round(n / f)) for n, f in zip(prepared.phases.shape, factors))
        step = [f // g for f, g in zip(factors, finer)]
        image = _downsample(image, step, shape)
        valid = _resample(valid, shape)
        phases = _change_grid(phases, prepared.n_labels, shape, step)
        region = None if region is None else _resample(region, shape)
        grids.append((image, valid > 0.999, phases, None if region is None else region > 0))
        finer = factors
    return grids[::-1]


def _stages(shape, spacing, tau, coarsest=4):
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


def _phase_moments(image, phases, n_phases):
    """Per phase: count, sum and sum of outer products of the pixels (rows of ``image``) in
    float64; pixels whose phase is ``n_phases`` are left out."""
    n_channels = image.shape[1]
    count = np.empty(n_phases)
    total = np.empty((n_phases, n_channels))
    outer = np.empty((n_phases, n_channels, n_channels))
    products = {(c, d): image[:, c] * image[:, d] for c in range(n_channels) for d in range(c, n_channels)}
    for k in range(n_phases):
        member = phases == k
        count[k] = np.count_nonzero(member)
        for c in range(n_channels):
            total[k, c] = np.sum(image[:, c], where=member, dtype=np.float64)
        for (c, d), product in products.items():
            outer[k, c, d] = outer[k, d, c] = np.sum(product, where=member, dtype=np.float64)
    return count, total, outer


def _moment_change(values, gained, lost, n_phases):
    """The change of :func:`_phase_moments` when the pixels (rows of ``values``) move from
    phases ``lost`` to ``gained``: one signed bincount per statistic (the fast way for the
    few pixels of a late step; :func:`_phase_moments`' masked sums are for whole images)."""
    rows = np.concatenate([values, values]).astype(np.float64)
    sign = np.repeat([1.0, -1.0], len(values))
    phases = np.concatenate([gained, lost])

    def change(weights):
        return np.bincount(phases, weights=sign * weights, minlength=n_phases)

    n_channels = values.shape[1]
    total = np.stack([change(rows[:, c]) for c in range(n_channels)], axis=-1)
    outer = np.empty((n_phases, n_channels, n_channels))
    for c in range(n_channels):
        for d in range(c, n_channels):
            outer[:, c, d] = outer[:, d, c] = change(rows[:, c] * rows[:, d])
    return change(1.0), total, outer


class _Problem:
    """The scope's constraints and the region models for one run."""

    def __init__(self, prepared, model, lam, model_options):
        self.scope = prepared.scope
        self.n_phases = prepared.n_labels + 1
        self.lam = np.float32(lam)
        n_channels = prepared.image.shape[-1]
        self.models = [make_model(model, n_channels, **model_options) for _ in range(self.n_phases)]

    def allowed(self, level, diffused):
        """Boolean mask per label phase of where it may be at the next step (None: anywhere)."""
        if self.scope == "inside":
            return [level.marked(k) for k in range(1, self.n_phases)]
        if self.scope == "object":  # within reach: no jumps
            return [np.logical_and(d > 1e-4, level.domain, out=level.scratch(("reach", k), bool))
                    for k, d in enumerate(diffused, start=1)]
        return [None] * (self.n_phases - 1)

    def fit(self, level, phases, label_masks):
        """Refit every phase's model on its valid pixels. Returns the models' costs (None for
        quadratic models, whose data energy follows from the moments) and the data energy
        ``lam sum_k <u_k, D_k>``."""
        if hasattr(self.models[0], "total_cost"):  # quadratic: all from the moments
            stats = level.moments(phases, self.n_phases)
            for k, model in enumerate(self.models):
                model.fit_moments(*(s[k] for s in stats))
            energy = sum(m.total_cost(*(s[k] for s in stats)) for k, m in enumerate(self.models))
            return None, float(self.lam) * energy
        masks = [np.logical_not(np.logical_or.reduce(label_masks)), *label_masks]
        for model, mask in zip(self.models, masks):
            model.fit(level.image[mask & level.valid])
        costs = [model.cost(level.image) for model in self.models]
        if level.invalid is not None:
            for cost in costs:
                cost[level.invalid] = 0.0  # non-finite pixels carry no data term
        return costs, float(self.lam) * sum(level.inner(c, m) for c, m in zip(costs, masks))

    def differences(self, level, costs):
        """``lam (D_k - D_0)`` for the label phases ``k >= 1`` and the relative cost of phase 0
        (0, or inf if it was never fitted; see :func:`~.models.cost_differences`)."""
        outs = [level.scratch(("cost", k)) for k in range(1, self.n_phases)]
        differences, baseline = cost_differences(self.models, level.image, self.lam, outs, costs)
        if level.invalid is not None:
            for difference in differences:
                difference[level.invalid] = 0.0
        return differences, baseline

    def two_phase_coefficients(self, level):
        """``(A, B, C)`` of ``lam (D_1 - D_0)`` when a step can go through the compiled
        two-phase decision (two grey quadratic phases, the plain heat step), else None."""
        if self.n_phases != 2 or level.sqrt_w is not None:
            return None
        return grey_difference(self.models[1], self.models[0], self.lam)


def _depth(mark, spacing):
    """Largest distance from a voxel of ``mark`` to the nearest unmarked voxel (the radius of
    a drawn ball), computed on the mark's bounding box grown by one voxel."""
    box = _bounding_box(mark, [1] * mark.ndim)
    return ndimage.distance_transform_edt(mark[box], sampling=spacing).max()


def _object_domain(image, valid, start, n_labels, spacing, reach, min_std):
    """Region of interest of ``scope="object"``: a neighbourhood of each mark holding background.

    Its radius (beyond the mark) is the larger of ``reach`` mark depths (the depth is the
    largest inner distance: the radius of a drawn ball) and twice the distance within which
    half of the pixels do not look like the mark (farther than 2 standard deviations, floored
    at ``min_std``, from its mean). Outside, nothing can be labelled and no data is read, so a
    label cannot leak into far, similar tissue and the background model stays local; yet a
    small mark deep inside a large object still sees the object's surroundings.
    """
    domain = np.zeros(start.shape, dtype=bool)
    for k in range(1, n_labels + 1):
        mark = start == k
        depth = _depth(mark, spacing)
        distance = ndimage.distance_transform_edt(~mark, sampling=spacing)
        samples = image[mark & valid]
        margin = reach * max(depth, 1.0)
        if len(samples):
            spread = np.maximum(samples.std(axis=0), min_std)
            unlike = np.any(np.abs(image - samples.mean(axis=0)) > 2 * spread, axis=-1)
            half = _half_unlike_distance(distance[valid], unlike[valid])
            if half is not None:
                margin = max(margin, 2 * half)
        domain |= distance <= margin
    return domain


def _half_unlike_distance(distance, unlike, n_bins=1024):
    """The distance of the first voxel, in order of ``distance`` (ties: in array order), at
    which at least half of the voxels so far are ``unlike``; None if there is none.

    Exact, without sorting every voxel: the voxels are binned by distance (bins keep the
    order), and only a bin where the share can reach one half is sorted.
    """
    top = float(distance.max())
    bins = (distance * (n_bins / top) if top > 0 else np.zeros_like(distance)).astype(np.intp)
    np.minimum(bins, n_bins - 1, out=bins)
    counts = np.bincount(bins, minlength=n_bins)
    unlike_counts = np.bincount(bins[unlike], minlength=n_bins)
    before = np.concatenate([[0], np.cumsum(counts)[:-1]])
    unlike_before = np.concatenate([[0], np.cumsum(unlike_counts)[:-1]])
    # the largest share within a bin: its unlike voxels first
    reachable = 2 * (unlike_before + unlike_counts) >= before + np.maximum(unlike_counts, 1)
    for b in np.flatnonzero(reachable & (counts > 0)):
        members = np.flatnonzero(bins == b)
        order = members[np.argsort(distance[members], kind="stable")]
        share = (unlike_before[b] + np.cumsum(unlike[order])) / (before[b] + np.arange(1, order.size + 1))
        first = np.flatnonzero(share >= 0.5)
        if first.size:
            return float(distance[order[first[0]]])
    return None


def _inside_domain(start, spacing, band=0.5):
    """Region of interest of ``scope="inside"``: the marked region and a band around it.

    The band is ``band`` times the region's depth (its largest inner distance: half the
    short side of a box) wide. The background model is learned there, from the object's
    surroundings, rather than from the whole image, whose far parts often hold colours
    that also occur in the object.
    """
    marked = start > 0
    depth = _depth(marked, spacing)
    return ndimage.distance_transform_edt(~marked, sampling=spacing) <= band * max(depth, 1.0)


def _enclosed(mask, axes):
    """Background voxels of ``mask`` that no face-connected path along ``axes`` links to the
    edge of its bounding box: the holes (what ``ndimage.binary_fill_holes`` fills, found
    with one labelling instead of repeated erosions, within the bounding box only)."""
    box = ndimage.find_objects(mask.astype(np.int8))
    holes = np.zeros(mask.shape, dtype=bool)
    if not box:
        return holes
    structure = np.zeros((3,) * mask.ndim, dtype=bool)
    centre = (1,) * mask.ndim
    structure[centre] = True
    for axis in axes:
        for step in (0, 2):
            structure[centre[:axis] + (step,) + centre[axis + 1:]] = True
    background, _ = ndimage.label(~mask[box[0]], structure)
    edge = np.zeros(background.shape, dtype=bool)
    for axis in axes:
        edge[(slice(None),) * axis + (0,)] = edge[(slice(None),) * axis + (-1,)] = True
    outside = np.unique(background[edge])
    holes[box[0]] = (background > 0) & ~np.isin(background, outside)
    return holes


def _fill_holes(mask, spacing):
    """Fill enclosed holes, in 3D and in every plane across the thickest axis."""
    filled = mask | _enclosed(mask, range(mask.ndim))
    if mask.ndim == 3:  # planes: connectivity only along the two other axes
        thickest = int(np.argmax(spacing))
        filled |= _enclosed(filled, [a for a in range(3) if a != thickest])
    return filled


def _as_objects(phases, previous, seeds, n_labels, spacing):
    """Per label, keep the components touching its seed (or, failing that, the largest),
    and fill the holes they enclose: ``scope="object"`` answers solid, connected objects.
    A label about to vanish keeps its previous extent: the mark says an object is there."""
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
                sizes = np.bincount(components.ravel())[1:]
                touched = np.array([np.argmax(sizes) + 1])
            out[mask & ~np.isin(components, touched)] = 0
            mask = out == k
        out[_fill_holes(mask, spacing) & (out == 0)] = k
    return out


def _lowest(psi, allowed, baseline, dtype):
    """Per voxel, the label phase ``k`` with the smallest ``psi_k = phi_k - phi_0`` among those
    allowed there, or 0 where none is below ``baseline`` (phase 0's own; ties: lowest), as
    ``dtype``."""
    better = np.empty(psi[0].shape, dtype=bool)
    best = baseline
    out = None
    for k, (candidate, where) in enumerate(zip(psi, allowed), start=1):
        np.less(candidate, best, out=better)
        if where is not None:
            better &= where
        if out is None:
            out = better.astype(dtype)
        else:
            np.copyto(out, k, where=better)
        if k < len(psi):
            best = np.where(better, candidate, best)
    return out


def _iterate(level, problem, phases, scale, max_num_iter, tol):
    """Run ICTM on one level; yields (iteration, phases, energy).

    With ``d_k = sqrt(w) G sqrt(w) u_k`` for the label phases and ``d_0 = ones - sum_k d_k``
    (``ones``: the operator applied to 1), a voxel compares ``psi_k = phi_k - phi_0 =
    lam (D_k - D_0) - scale (d_k - d_0)`` with 0: only the label phases are diffused. Two grey
    phases with quadratic models decide and sum through the compiled loops of
    :mod:`.kernels` (one pass each), everything else through numpy.
    """
    n_labels = problem.n_phases - 1
    energy = np.inf
    for iteration in range(max_num_iter + 1):
        if n_labels == 1 and phases.dtype == np.uint8:  # a 0/1 map is its own indicator
            masks = [phases.view(bool)]
        else:
            masks = [np.equal(phases, k, out=level.scratch(("mask", k), bool)) for k in range(1, n_labels + 1)]
        costs, data_energy = problem.fit(level, phases, masks)
        coefficients = problem.two_phase_coefficients(level)
        if coefficients is None:
            differences, baseline = problem.differences(level, costs)
        diffused = [level.diffuse(m, out=level.scratch(("diffused", k))) for k, m in enumerate(masks, start=1)]
        # E = lam sum_k <u_k, D_k> + scale/2 sum_k <u_k, ones - d_k>, with sum_k <u_k, ones> =
        # <1, ones> and <u_0, d_0> = <u_0, ones> - <1, labelled> + sum_{k>0} <u_k, labelled>
        if n_labels == 1:
            own, labelled_sum = two_phase_sums(diffused[0], phases)
            own = cross = [own]
        else:
            labelled = sum(diffused)  # sum_k d_k over the label phases
            own = [level.inner(d, m) for d, m in zip(diffused, masks)]
            cross = [level.inner(labelled, m) for m in masks]
            labelled_sum = float(np.sum(labelled, dtype=np.float64))
        background = level.total_ones - sum(level.inner(level.ones, m) for m in masks)
        kept = sum(own) + background - labelled_sum + sum(cross)
        new_energy = data_energy + 0.5 * float(scale) * (level.total_ones - kept)
        if new_energy > energy:  # rounding or a non-exact refit: stop at the last good state
            return
        energy = new_energy
        yield iteration, phases, energy
        if iteration == max_num_iter:
            return
        allowed = problem.allowed(level, diffused)
        if coefficients is not None:  # one compiled pass (the same arithmetic as below)
            new_phases = two_phase_decision(level.image[..., 0], None if level.invalid is None else level.valid,
                                            diffused[0], allowed[0], coefficients, scale, phases.dtype)
        else:
            pull = level.scratch("pull")
            if n_labels == 1:  # d_1 - d_0 = 2 d_1 - ones
                np.multiply(diffused[0], 2 * scale, out=pull)
                differences[0] -= pull
                differences[0] += scale * level.ones
            else:
                rest = np.subtract(level.ones, labelled, out=level.scratch("rest"))
                for difference, d in zip(differences, diffused):
                    np.subtract(d, rest, out=pull)
                    pull *= scale
                    difference -= pull
            new_phases = _lowest(differences, allowed, baseline, phases.dtype)
        if problem.scope == "object":
            new_phases = _as_objects(new_phases, phases, level.start, n_labels, level.spacing)
        moved = np.flatnonzero(new_phases != phases)
        if moved.size <= tol * phases.size:
            return
        level.move(moved, phases, new_phases, problem.n_phases)
        phases = new_phases


def default_parameters(model, n_channels, scope="all"):
    """``lam`` and ``min_std`` used when they are not given.

    Grey images get a variance floor of 10 % of the (robust) intensity range: a narrower
    model of a dark, clean background pulls the faint halo of bright objects into them.
    Colour and multichannel images get 2 %: their phases differ by subtler colour shifts,
    which a wide floor would blur. ``lam`` is the matching weight of the fidelity term.
    With ``scope="inside"`` the Gaussian models take a quarter (grey) or a tenth (colour)
    of it: a box says where the object is, so a strong pull to smooth, compact shapes beats
    following every intensity change (GrabCut photos: any colour ``lam`` in 0.03-0.09
    scores within 0.02 of the best; boxes around nuclei in 2D and 3D and around the MRI
    tumour: grey ``lam`` 0.2-0.5 beats 2, while 0.05 loses the object).
    Chosen on the development sets (see the README's "How it compares").
    """
    grey = n_channels == 1
    if model == "mean":
        lam = 4.0
    elif scope == "inside":
        lam = 0.5 if grey else 0.05
    else:
        lam = 2.0 if grey else 0.5
    return {"lam": lam, "min_std": 0.1 if grey else 0.02}


def _default_tau(prepared, finest):
    """sigma = 2 finest voxels; for ``scope="inside"`` at least 2.5 % of the marked region's size.

    A box drawn around an object says how large the object is, so the smoothing scale follows
    it (the boundary length term then means the same for a small and a large box).
    """
    sigma = 2.0 * finest
    if prepared.scope == "inside":
        volume = np.count_nonzero(prepared.phases) * np.prod(prepared.spacing)
        sigma = max(sigma, 0.025 * volume ** (1.0 / prepared.phases.ndim))
    return sigma**2 / 2.0


def threshold_dynamics(prepared, *, tau=None, lam=None, model="gaussian", edge=0.0,
                       max_num_iter=200, tol=0.0, coarse_to_fine=True, components=3,
                       min_std=None, reach=8.0, iter_callback=None):
    r"""Threshold dynamics on prepared input; a generator of (iteration, phases, energy).

    Parameters
    ----------
    prepared : Prepared
        From :func:`napari_heatseg.core.inputs.prepare`.
    tau : float, optional
        Diffusion time in physical units squared (the smoothing scale:
        ``sigma = sqrt(2 tau)``). Default: ``sigma`` = 2 of the finest voxels, and for
        ``scope="inside"`` at least 2.5 % of the marked region's size. Larger values give
        smoother, rounder masks; keep ``sigma >= 1.5`` voxels.
    lam : float, optional
        Weight of the region fidelity against the boundary length. Larger values
        follow the image more closely, smaller ones give smoother masks (useful range
        about 0.03-10). Default: see :func:`default_parameters`.
    model : {'gaussian', 'gmm', 'mean'}
        Region model per phase (:mod:`napari_heatseg.core.models`).
    edge : float in [0, 1]
        Strength of the edge weighting of the boundary length; 0 turns it off.
    max_num_iter : int
        Largest number of iterations at full resolution.
    tol : float
        Stop when at most ``tol`` times the number of voxels change in an iteration.
    coarse_to_fine : bool
        Solve on a coarser grid first when the image is large (faster convergence).
    components : int
        Mixture components per phase for ``model="gmm"``.
    min_std : float, optional
        Smallest standard deviation of a region model, in normalised intensity units
        (the robust intensity range is 1). Default: see :func:`default_parameters`.
    reach : float
        ``scope="object"`` only: how far an object may grow, in depths of its mark (the
        radius of a drawn ball) beyond the mark; at least ``reach`` voxels.
    iter_callback : callable, optional
        Called as ``iter_callback(iteration, phases, energy)`` for every state.

    Returns
    -------
    generator of (iteration, phases, energy)
        Full-resolution states; ``energy`` never increases. Parameters are checked
        before the generator is returned.
    """
    spacing = prepared.spacing
    finest = min(spacing)
    defaults = default_parameters(model, prepared.image.shape[-1], prepared.scope)
    tau = _default_tau(prepared, finest) if tau is None else tau
    lam = defaults["lam"] if lam is None else lam
    min_std = defaults["min_std"] if min_std is None else min_std
    _check_positive("tau", tau)
    _check_positive("lam", lam)
    _check_positive("tol", tol, allow_zero=True)
    _check_real("edge", edge)
    if not 0 <= edge <= 1:
        raise ValueError(f"`edge` must lie in [0, 1] (0 = plain heat kernel), got {edge!r}.")
    _check_positive("min_std", min_std)
    _check_positive("reach", reach)
    if isinstance(max_num_iter, bool) or not isinstance(max_num_iter, (int, np.integer)) or max_num_iter < 0:
        raise ValueError(f"`max_num_iter` must be a whole number >= 0, got {max_num_iter!r}.")
    if isinstance(components, bool) or not isinstance(components, (int, np.integer)) or components < 1:
        raise ValueError(f"`components` must be a whole number >= 1, got {components!r}.")
    if iter_callback is not None and not callable(iter_callback):
        raise TypeError(f"`iter_callback` must be callable (or None), got {iter_callback!r}.")
    make_model(model, 1)  # an unknown model name fails here, before any work
    return _run(prepared, tau, lam, model, edge, max_num_iter, tol, coarse_to_fine,
                {"components": components, "min_std": min_std}, reach, iter_callback)


def _bounding_box(mask, margin):
    """Slices of the bounding box of ``mask``, grown by ``margin`` voxels per axis."""
    box = ndimage.find_objects(mask.astype(np.int8))[0]
    return tuple(slice(max(b.start - m, 0), min(b.stop + m, n)) for b, m, n in zip(box, margin, mask.shape))


def _run(prepared, tau, lam, model, edge, max_num_iter, tol, coarse_to_fine, model_options, reach,
         iter_callback):
    """The iteration itself (a generator); see :func:`threshold_dynamics`.

    With a region of interest (``scope="inside"`` or ``"object"``) the work is done on its
    bounding box grown by 3 sigma of the coarsest stage: outside the region every voxel stays
    background, so the heat kernel sees the same surroundings, and the cost follows the
    region, not the image.
    """
    finest = min(prepared.spacing)
    unit_spacing = tuple(h / finest for h in prepared.spacing)  # lengths in finest voxels: lam is unit-free
    unit_tau = tau / finest**2
    problem = _Problem(prepared, model, lam, model_options)
    if prepared.n_labels < 256:  # phase maps of one byte: a quarter of the memory traffic
        prepared = replace(prepared, phases=prepared.phases.astype(np.uint8))
    shape, crop, domain = prepared.phases.shape, None, None
    if prepared.scope == "object":
        domain = _object_domain(prepared.image, prepared.valid, prepared.phases, prepared.n_labels,
                                unit_spacing, reach, model_options["min_std"])
    elif prepared.scope == "inside":
        domain = _inside_domain(prepared.phases, unit_spacing)
    if domain is not None:
        sigma = 4 * np.sqrt(2 * unit_tau)  # on the coarsest grid
        margin = [int(np.ceil(3 * sigma / h)) + 1 for h in unit_spacing]
        crop = _bounding_box(domain, margin)
        prepared = replace(prepared, image=prepared.image[crop], valid=prepared.valid[crop],
                           phases=prepared.phases[crop])
        domain = domain[crop]
    states = _solve(prepared, domain, problem, unit_spacing, unit_tau, edge, max_num_iter, tol, coarse_to_fine)
    for iteration, phases, energy in states:
        if crop is not None:
            phases, cropped = np.zeros(shape, dtype=phases.dtype), phases
            phases[crop] = cropped
        if iter_callback is not None:
            iter_callback(iteration, phases, energy)
        yield iteration, phases, energy


def _has_every_label(phases, n_labels):
    return all((phases == k).any() for k in range(1, n_labels + 1))


def _solve(prepared, domain, problem, unit_spacing, unit_tau, edge, max_num_iter, tol, coarse_to_fine):
    """Coarse-to-fine ICTM on ``prepared`` (lengths in finest voxels); yields full-resolution states."""
    phases = prepared.phases
    stages = _stages(phases.shape, unit_spacing, unit_tau) if coarse_to_fine else []
    grids = _coarse_grids(prepared, domain, [factors for factors, _ in stages])
    result = None
    for (image, valid, start, level_domain), (_, stage_tau) in zip(grids, stages):
        level_spacing = tuple(h * n / m for h, n, m in zip(unit_spacing, phases.shape, start.shape))
        coarse = _Level(image, valid, start, level_spacing, stage_tau, edge, level_domain)
        # the coarser stage's answer, unless it lost a label: then restart from the mark
        result = start if result is None else _resample(result, start.shape, order=0)
        if not _has_every_label(result, prepared.n_labels):
            result = start
        for _, result, _ in _iterate(coarse, problem, result, np.float32(np.sqrt(np.pi / stage_tau)),
                                     max_num_iter, tol):
            pass
    if result is not None:
        upsampled = _resample(result, phases.shape, order=0)
        if _has_every_label(upsampled, prepared.n_labels):
            phases = upsampled  # a label lost on a coarse grid restarts from the mark

    level = _Level(prepared.image, prepared.valid, prepared.phases, unit_spacing, unit_tau, edge, domain)
    yield from _iterate(level, problem, phases, np.float32(np.sqrt(np.pi / unit_tau)), max_num_iter, tol)
