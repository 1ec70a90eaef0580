"""The heat method on volumes larger than memory: the same step on dask arrays and zarr stores.

:func:`segment_chunked` is ``napari_heatseg.segment(image, start, method="heat",
scope="all", coarse_to_fine=False)`` for grey volumes and the region models ``"mean"`` and
``"gaussian"``, run block by block so that nothing has to fit in memory. It is a second
backend of the in-memory method, not a copy of it:

- the start passes the same checks as in memory (:func:`~napari_heatseg.core.inputs.prepare`'s,
  applied to its distinct values), the parameters are the same
  :class:`~napari_heatseg.core.ictm.params.HeatParameters`, and a constant image warns and
  returns the start as in memory;
- normalisation: the 0.5 / 99.5 percentiles of the finite voxels are *exact* order
  statistics found by a few global histogram passes (no sample, no approximation), combined
  with the same ranks and interpolation as :func:`numpy.percentile`;
- the heat step: :func:`~napari_heatseg.core.heat.gaussian_blur` (reflect mode, truncate 4)
  on every block through :func:`dask.array.map_overlap`, with an overlap of the kernel's
  radius per axis and the true reflecting boundary at the volume's faces;
- the region models are fitted from the phases' moments summed over every block
  (:meth:`~napari_heatseg.core.ictm.step.Problem.fit_moments`, never per block), so the
  answer does not depend on the chunking; each block then takes the step of
  :mod:`~napari_heatseg.core.ictm.step` (the same decision and boundary energy) on a
  :class:`~napari_heatseg.core.ictm.levels.Level` of its own;
- the phases live in zarr stores in a work folder, written block by block; the result is
  written block by block to the output zarr store.

Differences with the in-memory path, all at rounding level: the moments are summed anew
each iteration (in memory they are updated by the voxels that moved), and the heat step is
always the truncated Gaussian (the in-memory operator switches to the exact DCT when
``sigma > 8`` voxels). On the test volumes the labels are identical.
"""

import math
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..heat import gaussian_blur, kernel_radius
from .._percentiles import interpolate_percentile, percentile_ranks
from ..inputs import _as_array, _check_spacing, supported_float_type, warn_constant_image
from ..models import phase_moments
from ..outputs import check_zarr_target, write_zarr
from ..scope import Scope
from ..start_labels import check_start_labels, phase_dtype, refuse_labels_without_data
from .levels import Level
from .params import HeatParameters
from .step import Problem, choose_decision, decide, interaction_energy, label_masks

__all__ = ["CHUNKED_MODELS", "segment_chunked"]

CHUNKED_MODELS = ("mean", "gaussian")
_GATHER = 1 << 16  # order statistics: gather a histogram bin once it holds this few values


# ---------------------------------------------------------------------------- percentiles

def _bin_pass(blocks, lo, hi, edges):
    """Counts per bin of [lo, hi] (bins split at ``edges``), and the min/max inside [lo, hi]."""
    import dask

    def one(block):
        v = block[np.isfinite(block)]
        v = v[(v >= lo) & (v <= hi)]
        counts = np.bincount(np.searchsorted(edges, v, side="right"), minlength=len(edges) + 1)
        return counts, (v.min() if v.size else np.inf), (v.max() if v.size else -np.inf)

    parts = dask.compute(*[dask.delayed(one)(b) for b in blocks])
    counts = sum(p[0] for p in parts)
    return counts, min(p[1] for p in parts), max(p[2] for p in parts)


def _gather(blocks, lo, hi):
    import dask

    def one(block):
        v = block[np.isfinite(block)]
        return v[(v >= lo) & (v <= hi)]

    return np.sort(np.concatenate(dask.compute(*[dask.delayed(one)(b) for b in blocks])))


def _order_statistic(blocks, rank, lo, hi):
    """The ``rank``-th smallest finite value (0-based), exactly, by histogram refinement."""
    below = 0  # finite values < lo
    while True:
        edges = np.unique(np.linspace(lo, hi, 1025)[1:-1])
        counts, vmin, vmax = _bin_pass(blocks, lo, hi, edges)
        if vmin == vmax:
            return vmin
        total = counts.sum()
        if total <= _GATHER:
            return _gather(blocks, lo, hi)[rank - below]
        cum = np.cumsum(counts)
        j = int(np.searchsorted(cum, rank - below, side="right"))
        below += int(cum[j - 1]) if j else 0
        new_lo = edges[j - 1] if j else vmin
        new_hi = np.nextafter(edges[j], -np.inf) if j < len(edges) else vmax
        lo, hi = max(new_lo, vmin), min(new_hi, vmax)


def _percentiles(work, n_valid, qs=(0.5, 99.5)):
    """numpy.percentile(finite values, qs) with the linear method, exact, by global passes."""
    blocks = list(work.to_delayed().ravel())
    import dask

    lo, hi = dask.compute(_nanmin(work), _nanmax(work))
    out = []
    cache = {}
    for below, above, gamma in percentile_ranks(n_valid, qs):
        for r in (below, above):
            if r not in cache:
                cache[r] = _order_statistic(blocks, r, lo, hi)
        out.append(interpolate_percentile(work.dtype.type(cache[below]), work.dtype.type(cache[above]), gamma))
    return out, (lo, hi)


def _nanmin(x):
    import dask.array as da

    return da.where(da.isfinite(x), x, np.inf).min()


def _nanmax(x):
    import dask.array as da

    return da.where(da.isfinite(x), x, -np.inf).max()


# ------------------------------------------------------------------------------- iteration

def _normalise_block(block, low, high, dtype):
    work = block.astype(dtype, copy=False)
    valid = np.isfinite(work)
    out = np.zeros(work.shape, dtype=np.float32)
    if high > low:
        out[valid] = (work[valid] - low) / (high - low)
    return out


def _diffuse_block(phases, label, sigma):
    return gaussian_blur((phases == label).astype(np.float32), sigma)


def _block_moments(image, valid, phases, n_phases):
    """:func:`~napari_heatseg.core.models.phase_moments` of one block's valid voxels."""
    counted = phases if valid.all() else np.where(valid, phases, n_phases)
    return phase_moments(image.reshape(-1, 1), counted.ravel(), n_phases)


def _add(moments, more):
    return tuple(a + b for a, b in zip(moments, more))


def _step_block(image, valid, phases, *diffused, problem, spacing, tau, path, region):
    """One step of one block: writes its new phases; returns (boundary energy of the old
    phases, voxels changed, moments of the new phases)."""
    import zarr

    level = Level(image[..., None], valid, phases, Scope("all", problem.n_phases - 1, phases), spacing, tau,
                  edge=0.0, variant="gaussian")
    masks = label_masks(level, phases, problem.n_phases - 1)
    energy = interaction_energy(level, phases, masks, diffused)
    compiled = choose_decision(level, problem) == "compiled"
    coefficients = problem.two_phase_coefficients() if compiled else None
    new = decide(level, problem, None, list(diffused), [None] * len(diffused), coefficients, phases.dtype)
    zarr.open_array(path, mode="r+")[region] = new
    return energy, int(np.count_nonzero(new != phases)), _block_moments(image, valid, new, problem.n_phases)


def _regions(chunks):
    starts = [np.cumsum((0,) + c[:-1]) for c in chunks]
    for index in np.ndindex(*[len(c) for c in chunks]):
        yield index, tuple(slice(int(s[i]), int(s[i]) + c[i]) for s, c, i in zip(starts, chunks, index))


def _new_store(path, shape, chunks, dtype):
    import zarr

    return zarr.create_array(store=str(path), shape=shape, chunks=chunks, dtype=dtype, overwrite=True)


def _check_options(scope, params):
    """The options the chunked backend does not have, refused with the way out."""
    if scope not in (None, "all"):  # None: the default, which for blocks is "all"
        raise ValueError(f"scope={scope!r} is not supported by the chunked path; only 'all' is "
                         f"(use napari_heatseg.segment in memory, or --stack for slices).")
    refused = {"edge": lambda v: v != 0, "coarse_to_fine": bool}
    unsupported = sorted(name for name, test in refused.items() if name in params and test(params[name]))
    if unsupported:
        raise ValueError(
            f"the chunked path does not support {', '.join(unsupported)}; it runs the heat method with "
            f"model 'mean' or 'gaussian', scope 'all', no edge weighting, no coarse-to-fine.")
    checked = HeatParameters.from_keywords(**{k: v for k, v in params.items() if k != "coarse_to_fine"})
    if checked.model not in CHUNKED_MODELS:
        raise ValueError(f"model={checked.model!r} is not supported by the chunked path; use one of "
                         f"{CHUNKED_MODELS}.")
    return checked


def segment_chunked(image, start, *, out, spacing=None, scope="all", chunks=None, workdir=None,
                    overwrite=False, iter_callback=None, **params):
    """Segment a 2D or 3D dask array or zarr store block by block; the result goes to a zarr store.

    Same maths and parameters as ``napari_heatseg.segment(image, start, scope="all",
    coarse_to_fine=False, model=...)``; uses the active dask scheduler (a
    ``dask.distributed.Client`` if one is running).

    Parameters
    ----------
    image : (M, N[, P]) dask array, zarr array, path to a zarr array, or ndarray
        Grey image, any real dtype (non-finite voxels carry no data).
    start : same shape, int or bool (dask, zarr, path or ndarray)
        Start labels: 0 = unmarked, each value > 0 a label.
    out : str or Path
        Zarr store to write the labels to (chunked like ``image``).
    spacing : sequence of float, optional
        Physical voxel size per axis.
    scope : {'all'}
        Only ``'all'`` is supported by blocks (``'object'`` needs connected components and
        ``'inside'`` the start at every step; use the in-memory path for them).
    chunks : tuple of int, optional
        Rechunk the image to this chunk shape first.
    workdir : str or Path, optional
        Folder for the intermediate phase stores (default: a temporary folder, removed at
        the end). On a multi-machine cluster it must be on a shared file system.
    overwrite : bool
        Replace an existing ``out`` store.
    iter_callback : callable, optional
        Called as ``iter_callback(iteration, energy, changed)`` after every iteration.
    **params
        The heat parameters (:class:`~napari_heatseg.core.ictm.params.HeatParameters`) but
        ``edge`` and ``coarse_to_fine``; ``model`` is ``'mean'`` (the default here) or
        ``'gaussian'``.

    Returns
    -------
    labels : dask array
        Backed by the zarr store ``out``, with the start's label values and dtype.
    """
    import dask.array as da

    params.setdefault("model", "mean")
    checked = _check_options(scope, params)
    image_given, start_given = image, start
    image = _as_dask(image, "image")
    start = _as_dask(start, "start")
    image = image.rechunk(chunks if chunks is not None else image.chunksize)  # regular chunks for zarr
    if image.ndim not in (2, 3):
        raise ValueError(f"`image` must be a 2D or 3D grey volume, got shape {image.shape}.")
    if start.shape != image.shape:
        raise ValueError(f"`start` has shape {start.shape} but `image` has {image.shape}; they must match.")
    if np.issubdtype(image.dtype, np.complexfloating):
        raise TypeError("`image` is complex; pass its magnitude or one real component.")
    start = start.rechunk(image.chunks)
    out = check_zarr_target(out, overwrite=overwrite, inputs=(("image", image_given), ("start", start_given)))
    spacing = _check_spacing(spacing, image.ndim)
    resolved = checked.resolve_for(1, "all", spacing)  # grey volumes, as in memory
    finest = min(spacing)
    unit_spacing = tuple(h / finest for h in spacing)
    unit_tau = resolved.tau / finest**2
    sigma = [s if s >= 0.05 else 0 for s in (math.sqrt(2 * unit_tau) / h for h in unit_spacing)]
    depth = tuple(kernel_radius(s) for s in sigma)
    if any(d > c for d, c in zip(depth, image.chunksize)):
        raise ValueError(f"chunks {image.chunksize} are smaller than the heat kernel's reach {depth}; "
                         f"use larger chunks (chunks=...).")

    # the start: prepare's checks on its distinct values, then compact phases
    distinct = np.unique(start.compute() if start.size <= 1 << 24 else da.unique(start).compute())
    _, values = check_start_labels(_as_array(distinct, "start"), distinct.shape, distinct.shape, None)
    dtype = phase_dtype(len(values))
    lookup = values.astype(np.int64) if values.dtype != bool else np.array([1])
    phases0 = start.map_blocks(
        lambda b: np.where(b != 0, np.searchsorted(lookup, b.astype(np.int64)) + 1, 0).astype(dtype),
        dtype=dtype)

    # normalisation: exact global percentiles
    work_dtype = supported_float_type(image.dtype if image.dtype != bool else np.uint8)
    work = image.astype(work_dtype)
    valid = da.isfinite(work)
    n_valid = int(valid.sum().compute())
    if n_valid == 0:
        raise ValueError("`image` has no finite voxel (all NaN or inf); there is nothing to segment.")
    (low, high), (vmin, vmax) = _percentiles(work, n_valid)
    if not high > low:
        low, high = work_dtype.type(vmin), work_dtype.type(vmax)
    normalised = work.map_blocks(_normalise_block, low, high, work_dtype, dtype=np.float32)

    problem = Problem(len(values), 1, resolved)
    cleanup = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="heatseg-chunked-") if workdir is None else workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    chunk_shape = tuple(c[0] for c in image.chunks)
    try:
        stores = [workdir / f"phases{i}.zarr" for i in range(3)]
        for path in stores:
            _new_store(path, image.shape, chunk_shape, dtype)
        da.to_zarr(phases0, str(stores[0]), overwrite=True, compute=True)
        final = stores[0]
        if vmin == vmax:  # no contrast: the start, as in memory
            warn_constant_image(stacklevel=2)
        else:
            final = _iterate(normalised, valid, stores, image.chunks, problem, unit_spacing, unit_tau, sigma,
                             depth, values, resolved, iter_callback)
        table = np.concatenate([np.zeros(1, values.dtype), values])  # keeps the dtype (uint64 ids)
        result = da.from_zarr(str(final)).rechunk(image.chunks).map_blocks(lambda b: table[b], dtype=values.dtype)
        write_zarr(out, result, overwrite=overwrite)  # atomic: a temporary store renamed into place
    finally:
        if cleanup:
            shutil.rmtree(workdir, ignore_errors=True)
    return da.from_zarr(str(out))


def _iterate(normalised, valid, stores, chunks, problem, spacing, tau, sigma, depth, values, params,
             iter_callback):
    """Steps until convergence over the phase stores; returns the store of the last good state."""
    import dask
    import dask.array as da

    n_phases = len(values) + 1
    stats = _sum_moments(dask.compute(*[
        dask.delayed(_block_moments)(im, va, ph, n_phases)
        for im, va, ph in zip(normalised.to_delayed().ravel(), valid.to_delayed().ravel(),
                              da.from_zarr(str(stores[0])).to_delayed().ravel())]))
    seen = stats[0][1:]
    if not np.all(seen):
        refuse_labels_without_data(values, seen)
    prev, cur, nxt, spare = None, stores[0], stores[1], stores[2]
    energy = np.inf
    size = int(np.prod(normalised.shape))
    for iteration in range(params.max_num_iter + 1):
        data_energy = problem.fit_moments(stats)
        phases = da.from_zarr(str(cur)).rechunk(chunks)
        diffused = [phases.map_overlap(_diffuse_block, depth=depth, boundary="none", dtype=np.float32,
                                       label=label, sigma=sigma).rechunk(chunks)
                    for label in range(1, n_phases)]  # (dask may merge a thin last chunk)
        delayed = [b.to_delayed(optimize_graph=False) for b in (normalised, valid, phases, *diffused)]
        tasks = [dask.delayed(_step_block)(*[d[index] for d in delayed], problem=problem, spacing=spacing,
                                           tau=tau, path=str(nxt), region=region)
                 for index, region in _regions(chunks)]
        results = dask.compute(*tasks)
        new_energy = data_energy + sum(r[0] for r in results)
        changed = sum(r[1] for r in results)
        if new_energy > energy:  # as in memory: stop at the last good state
            return prev
        energy = new_energy
        if iter_callback is not None:
            iter_callback(iteration, energy, changed)
        if iteration == params.max_num_iter or changed <= params.tol * size:
            return cur
        stats = _sum_moments([r[2] for r in results])
        prev, cur, nxt = cur, nxt, (prev if prev is not None else spare)
    return cur


def _sum_moments(parts):
    total = parts[0]
    for part in parts[1:]:
        total = _add(total, part)
    return total


def _as_dask(value, name):
    import dask.array as da
    import zarr

    if isinstance(value, (str, Path)):
        value = zarr.open_array(str(value), mode="r")
    if isinstance(value, da.Array):
        return value
    if isinstance(value, zarr.Array):
        return da.from_zarr(value)
    array = np.asarray(value)
    if array.dtype == object or array.size == 0:
        raise TypeError(f"`{name}` must be a non-empty numeric array, dask array or zarr store.")
    return da.from_array(array, chunks="auto")
