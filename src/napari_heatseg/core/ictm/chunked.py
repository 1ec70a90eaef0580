"""Full-3D threshold dynamics on volumes larger than memory: dask arrays and zarr stores, by chunks.

:func:`segment_chunked` mirrors :func:`napari_heatseg.segment` with ``method="heat"``,
``scope="all"``, ``coarse_to_fine=False`` and no edge weighting, for the region models
``"mean"`` and ``"gaussian"`` on grey images. Only the iteration is re-implemented, so that
nothing has to fit in memory:

- normalisation: the 0.5 / 99.5 percentiles of the finite voxels are *exact* order
  statistics found by a few global histogram passes (no sample, no approximation), combined
  with the same linear interpolation as :func:`numpy.percentile`;
- the heat step: :func:`~napari_heatseg.core.heat.gaussian_blur` (reflect mode, truncate 4) on every chunk
  through :func:`dask.array.map_overlap`, with an overlap of ``ceil(4 sigma)`` voxels per axis
  and the true reflecting boundary at the volume's faces (``boundary="none"``);
- region statistics (count, sum and sum of squares per phase) are global reductions over all
  chunks at every iteration, never per chunk, so the answer does not depend on the chunking;
- the phases live in zarr stores in a work folder, written chunk by chunk; the result is
  written chunk by chunk to the output zarr store.

Differences with the in-memory path, all at rounding level: region means are summed in
float64 over chunks (the in-memory ``"mean"`` model averages in float32), so a voxel whose
two phase costs tie to within ~1e-7 may fall the other way; the heat step is always the
truncated Gaussian (the in-memory operator switches to the exact DCT when ``sigma > 8``
voxels). On the test volumes the labels are identical.
"""

import math
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..heat import gaussian_blur, kernel_radius
from ..inputs import _check_spacing, interpolate_percentile, percentile_ranks, supported_float_type
from ..io import HeatsegIOError
from ..models import make_model
from .params import HeatParameters, default_parameters

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


def _stats(image, valid, phases, n_phases):
    """Per phase: count, sum and sum of squares of the valid voxels (float64)."""
    stats = np.zeros((n_phases, 3))
    for k in range(n_phases):
        v = image[(phases == k) & valid].astype(np.float64)
        stats[k] = len(v), v.sum(), (v * v).sum()
    return stats


def _fit(models, stats):
    """Fit each model as on its phase's voxels, from the global count, sum and sum of squares.

    The Gaussian model is fitted by its own ``fit`` on a two-point surrogate sample with the
    same mean and variance (whatever its covariance rule, it depends on those only); the mean
    model takes the global mean.
    """
    for model, (n, s, ss) in zip(models, stats):
        if n == 0:
            model.fit(np.empty((0, 1), np.float32))  # keeps the last fit (or the neutral one)
            continue
        mean = s / n
        if hasattr(model, "cov"):
            std = np.sqrt(max(ss / n - mean * mean, 0.0))
            model.fit(np.array([[mean - std], [mean + std]]) if n > 1 else np.array([[mean]]))
        else:
            model.mean = np.array([mean], dtype=np.float32)


def _step_block(image, valid, phases, *diffused, models, lam, scale, path, region):
    """One ICTM update of one chunk: writes the new phases, returns (energy, changed, stats)."""
    import zarr

    image = image[..., None]
    costs = []
    for model in models:
        cost = model.cost(image)
        cost[~valid] = 0.0
        costs.append(lam * cost)
    ones = np.float32(1.0)
    all_diffused = [ones - sum(diffused), *diffused]
    energy = sum(
        float(np.sum(c + 0.5 * scale * (ones - d), where=(phases == k), dtype=np.float64))
        for k, (c, d) in enumerate(zip(costs, all_diffused))
    )
    phi = np.stack([c - scale * d for c, d in zip(costs, all_diffused)])
    new = np.argmin(phi, axis=0).astype(phases.dtype)
    zarr.open_array(path, mode="r+")[region] = new
    stats = _stats(image[..., 0], valid, new, len(models))
    return energy, int(np.count_nonzero(new != phases)), stats


def _regions(chunks):
    starts = [np.cumsum((0,) + c[:-1]) for c in chunks]
    for index in np.ndindex(*[len(c) for c in chunks]):
        yield index, tuple(slice(int(s[i]), int(s[i]) + c[i]) for s, c, i in zip(starts, chunks, index))


def _new_store(path, shape, chunks, dtype):
    import zarr

    return zarr.create_array(store=str(path), shape=shape, chunks=chunks, dtype=dtype, overwrite=True)


def segment_chunked(image, start, *, out, spacing=None, scope="all", tau=None, lam=None, model="mean",
                    max_num_iter=200, tol=0.0, min_std=None, chunks=None, workdir=None,
                    overwrite=False, iter_callback=None, **params):
    """Segment a 3D dask array or zarr store chunk by chunk; the result goes to a zarr store.

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
        Only ``'all'`` is supported by chunks (``'object'`` needs connected components and
        ``'inside'`` the start at every step; use the in-memory path for them).
    tau, lam, max_num_iter, tol, min_std
        As for the heat method, with the same defaults (:func:`napari_heatseg.core.dynamics.threshold_dynamics`).
    model : {'mean', 'gaussian'}
        Region model; the mixture model needs per-iteration sampling and is refused.
    chunks : tuple of int, optional
        Rechunk the image to this chunk shape first.
    workdir : str or Path, optional
        Folder for the intermediate phase stores (default: a temporary folder, removed at
        the end). On a multi-machine cluster it must be on a shared file system.
    overwrite : bool
        Replace an existing ``out`` store.
    iter_callback : callable, optional
        Called as ``iter_callback(iteration, energy, changed)`` after every iteration.

    Returns
    -------
    labels : dask array
        Backed by the zarr store ``out``, with the start's label values and dtype.
    """
    import dask
    import dask.array as da

    if params:
        unsupported = ", ".join(sorted(params))
        raise ValueError(
            f"the chunked path does not support {unsupported}; it runs the heat method with "
            f"model 'mean' or 'gaussian', scope 'all', no edge weighting, no coarse-to-fine."
        )
    if scope != "all":
        raise ValueError(f"scope={scope!r} is not supported by the chunked path; only 'all' is "
                         f"(use napari_heatseg.segment in memory, or --stack for slices).")
    if model not in CHUNKED_MODELS:
        raise ValueError(f"model={model!r} is not supported by the chunked path; use one of {CHUNKED_MODELS}.")
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
    out = Path(out)
    if out.exists() and not overwrite:
        raise HeatsegIOError(f"{out} already exists; pass overwrite=True (CLI: --overwrite) to replace it.")
    spacing = _check_spacing(spacing, image.ndim)
    finest = min(spacing)
    checked = HeatParameters(tau=tau, lam=lam, model=model, max_num_iter=max_num_iter, tol=tol, min_std=min_std)
    tau = 2.0 * finest**2 if tau is None else tau
    defaults = default_parameters(model, 1)  # grey volumes, as the in-memory method
    lam = defaults["lam"] if lam is None else lam
    min_std = defaults["min_std"] if min_std is None else checked.min_std
    unit_tau = tau / finest**2
    sigma = [s if s >= 0.05 else 0 for s in (math.sqrt(2 * unit_tau) / (h / finest) for h in spacing)]
    depth = tuple(kernel_radius(s) for s in sigma)
    if any(d > c for d, c in zip(depth, image.chunksize)):
        raise ValueError(f"chunks {image.chunksize} are smaller than the heat kernel's reach {depth}; "
                         f"use larger chunks (chunks=...).")
    scale = np.float32(np.sqrt(np.pi / unit_tau))

    # start: label values and compact phases
    values = np.unique(start.compute() if start.size <= 1 << 24 else da.unique(start).compute())
    values = values[values != 0]
    if values.size == 0:
        raise ValueError("`start` marks nothing (all zeros); draw at least one label on the object.")
    if np.any(values < 0):
        raise ValueError("`start` has negative labels; use 0 for unmarked and positive integers.")
    phase_dtype = np.int8 if len(values) < 127 else np.int32
    phases0 = start.map_blocks(lambda b: np.where(b != 0, np.searchsorted(values, b) + 1, 0).astype(phase_dtype),
                               dtype=phase_dtype)

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

    models = [make_model(model, 1, min_std=min_std) for _ in range(len(values) + 1)]
    cleanup = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="heatseg-chunked-") if workdir is None else workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    chunk_shape = tuple(c[0] for c in image.chunks)
    try:
        stores = [workdir / f"phases{i}.zarr" for i in range(3)]
        for path in stores:
            _new_store(path, image.shape, chunk_shape, phase_dtype)
        da.to_zarr(phases0, str(stores[0]), overwrite=True, compute=True)
        stats = sum(dask.compute(*[
            dask.delayed(_stats)(im, va, ph, len(models))
            for im, va, ph in zip(normalised.to_delayed().ravel(), valid.to_delayed().ravel(),
                                  da.from_zarr(str(stores[0])).to_delayed().ravel())
        ]))
        prev, cur, nxt = None, stores[0], stores[1]
        spare = stores[2]
        energy = np.inf
        final = cur
        for iteration in range(max_num_iter + 1):
            _fit(models, stats)
            phases = da.from_zarr(str(cur)).rechunk(image.chunks)
            diffused = [phases.map_overlap(_diffuse_block, depth=depth, boundary="none", dtype=np.float32,
                                           label=label, sigma=sigma).rechunk(image.chunks)
                        for label in range(1, len(values) + 1)]  # (dask may merge a thin last chunk)
            tasks = []
            blocks = [normalised, valid, phases, *diffused]
            delayed = [b.to_delayed(optimize_graph=False) for b in blocks]
            for index, region in _regions(image.chunks):
                parts = [d[index] for d in delayed]
                tasks.append(dask.delayed(_step_block)(*parts, models=models, lam=np.float32(lam), scale=scale,
                                                       path=str(nxt), region=region))
            results = dask.compute(*tasks)
            new_energy = sum(r[0] for r in results)
            changed = sum(r[1] for r in results)
            if new_energy > energy:  # as in memory: stop at the last good state
                final = prev
                break
            energy = new_energy
            final = cur
            if iter_callback is not None:
                iter_callback(iteration, energy, changed)
            if iteration == max_num_iter or changed <= tol * image.size:
                break
            stats = sum(r[2] for r in results)
            prev, cur, nxt = cur, nxt, (prev if prev is not None else spare)
        lut = np.concatenate([[0], values]).astype(values.dtype)
        result = da.from_zarr(str(final)).rechunk(image.chunks).map_blocks(lambda b: lut[b], dtype=values.dtype)
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        da.to_zarr(result, str(out), overwrite=False)
    finally:
        if cleanup:
            shutil.rmtree(workdir, ignore_errors=True)
    return da.from_zarr(str(out))


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
