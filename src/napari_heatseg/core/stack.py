"""Slice-by-slice segmentation of stacks: propagation from annotated slices, independent slices, full 3D.

An annotator labels one slice (or a few) of a 3D or 2D+t stack; :func:`iter_stack` fills in
the others. In ``"propagate"`` mode each next slice starts from its neighbour's result and
is re-fitted to its own image by :func:`napari_heatseg.segment` (so the mask follows the
object, it is not copied), in both directions from every annotated slice, until the object
vanishes, fades, turns into another structure or its area jumps (a leak;
:mod:`.evidence`). Where and why each label stopped is returned as :class:`StackStop`
records and told in a warning. Annotated slices are returned as drawn, unless their marks
are starts to grow from (``scope="object"``: a ball inside the object): those slices are
segmented first, their marks kept. ``"independent"`` segments every slice from the same start, and ``"full3d"``
segments the volume in one call. :func:`fill_stack` writes the slices into one label
volume as they come (the one assembly, used by :func:`segment_stack`, the CLI's and the
batch jobs' stacks, and the napari widget's slice-by-slice runs).

>>> for index, done, total in fill_stack(result, volume, start):   # doctest: +SKIP
...     progress.update(done, total)
"""

import warnings
from contextlib import nullcontext

import numpy as np

from .api import DEFAULT_METHOD, segment
from .evidence import MAX_DRIFT, MIN_CONTRAST, StackStop, drop_changed, drop_lost, label_contrasts

__all__ = ["MODES", "StackStop", "fill_stack", "iter_stack", "segment_stack"]

MODES = ("propagate", "independent", "full3d")

RETRY_REACH = 2.0
"""``scope="object"``: a slice whose label leaked (area jump) is segmented once more with
``reach`` this many depths of the neighbour's object (between neighbouring slices an object
moves by less than its own depth), before propagation gives up. Measured on the bundled
mri3d sample from its ball (benchmarks/leak.py): 3D IoU 0.20 without the retry, 0.50 with
1, 0.51 with 2, 0.20 with 3; on the three largest cells3d nuclei from a ball, 1, 2 and 3
give the same (0.54 / 0.85 / 0.57: the retried slices leak again). Chosen on one volume:
the lead may want to re-check it on other stacks."""

def _normalise_axes(image, start, axis, channel_axis):
    """Stack axis in image and start coordinates, and the channel axis of one image slice."""
    ndim = image.ndim
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
        raise ValueError(f"`axis` must be an axis of the image (shape {image.shape}), got {axis!r}.")
    axis = axis % ndim
    if channel_axis is None:
        return axis, axis, None
    if isinstance(channel_axis, bool) or not isinstance(channel_axis, (int, np.integer)) \
            or not -ndim <= channel_axis < ndim:
        raise ValueError(
            f"channel_axis={channel_axis!r} does not exist in an image of shape {image.shape}; "
            f"use an axis in [{-ndim}, {ndim - 1}] or None."
        )
    channel_axis = channel_axis % ndim
    if channel_axis == axis:
        raise ValueError(f"the stack axis ({axis}) cannot also be the channel axis; pass another `axis`.")
    start_axis = axis - (channel_axis < axis)
    return axis, start_axis, channel_axis - (channel_axis > axis)


def _start_axis(image, axis, channel_axis):
    """The stack axis counted among the start's (spatial) axes; reads only the image's shape."""
    return _normalise_axes(np.empty((1,) * len(np.shape(image))), None, axis, channel_axis)[1]


def _slice_spacing(spacing, start_ndim, start_axis):
    if spacing is None:
        return None
    spacing = tuple(np.broadcast_to(np.asarray(spacing, dtype=float), (start_ndim,))) \
        if np.ndim(spacing) == 0 else tuple(spacing)
    if len(spacing) != start_ndim:
        raise ValueError(
            f"`spacing` needs one number per spatial axis of the stack ({start_ndim}), got {spacing}."
        )
    return spacing[:start_axis] + spacing[start_axis + 1:]


def _annotated(start, start_axis):
    other = tuple(a for a in range(start.ndim) if a != start_axis)
    return np.flatnonzero(np.any(start != 0, axis=other))


def _propagation_order(annotated, n):
    """(index, neighbour) pairs: every slice from its nearest annotated slice, outward."""
    owner = np.argmin(np.abs(np.arange(n)[:, None] - annotated[None, :]), axis=1)
    order = []
    for k, a in enumerate(annotated):
        for step in (-1, 1):
            i = a + step
            while 0 <= i < n and owner[i] == k and i not in annotated:
                order.append((i, i - step))
                i += step
    return order


def iter_stack(image, start, *, mode="propagate", axis=0, method=DEFAULT_METHOD, channel_axis=None,
               spacing=None, scope=None, max_area_ratio=3.0, min_area=1, min_contrast=MIN_CONTRAST,
               max_drift=MAX_DRIFT, refit_annotated=None, executor=None, **params):
    """Segment a stack slice by slice, yielding each slice as soon as it is done.

    Parameters
    ----------
    image : (S, M, N[, P][, C]) array_like
        The stack: ``S`` slices or time points along ``axis``, each a 2D (or 3D) image,
        with a channel axis if ``channel_axis`` is given.
    start : (S, M, N[, P]) array_like of int or bool
        Labels drawn on one or more slices (0 elsewhere). For ``mode="independent"`` it
        may also be a single slice's start, used for every slice.
    mode : {'propagate', 'independent', 'full3d'}
        ``'propagate'``: from every annotated slice outward in both directions, each slice
        starts from its neighbour's result (nearest annotated slice wins); annotated slices
        are returned as drawn. ``'independent'``: every slice from the same start (a
        stack-shaped start gives each slice the marks of its nearest annotated slice).
        ``'full3d'``: one :func:`~napari_heatseg.segment` call on the whole volume.
    axis : int
        Axis of ``image`` along which the stack is sliced.
    method, channel_axis, scope, **params
        As for :func:`~napari_heatseg.segment`; ``channel_axis`` is an axis of ``image``.
    spacing : sequence of float, optional
        Physical voxel size per spatial axis of the stack (the stack axis included).
    max_area_ratio : float
        Propagation stops for a label whose area grows by more than this factor from one
        slice to the next (it leaked into a neighbouring structure); that slice is left empty.
    min_area : int
        Propagation stops for a label whose area falls below this many pixels (it vanished).
    min_contrast : float
        Propagation stops for a label whose contrast with a thin ring around it (mean
        inside minus mean around, projected on the annotated slice's contrast) falls below
        this fraction of the contrast on its annotated slice (the object faded out).
    max_drift : float
        Propagation stops for a label whose mean intensity moved from the annotated
        slice's by more than this many times the annotated contrast (it leaked into another
        structure). Measured on brain1: true tumour slices drift <= 0.4, leaks >= 1.
        Both checks are scale- and shift-free (:func:`~napari_heatseg.core.evidence.verdict`);
        ``min_contrast=-inf, max_drift=inf`` turn them off.
    refit_annotated : bool, optional
        ``mode="propagate"``: segment the annotated slices too, from their marks (kept as
        fixed seeds: a drawn voxel is never removed), before propagating from the result
        (the marks are starts, such as a ball inside the object, not finished outlines).
        Default: True for ``scope="object"``, else False (annotated slices are returned as
        drawn).

    executor : concurrent.futures.Executor or dask.distributed.Client, optional
        ``mode="independent"`` only: segment the slices in parallel on it (anything with
        ``submit``); slices are then yielded in the order they finish.

    Yields
    ------
    index : int
        Position of the slice along ``axis``.
    labels : ndarray
        The slice's labels (spatial shape of one slice, the start's dtype).
    done, total : int
        Slices finished so far and slices to do (annotated slices in ``'propagate'`` mode
        are counted only when ``refit_annotated``). Closing the generator stops the work.

    Returns
    -------
    stops : list of StackStop
        The generator's return value (``StopIteration.value``; what :func:`fill_stack`
        returns, and :func:`segment_stack` with ``return_stops=True``): ``mode="propagate"``:
        where and why each label's propagation stopped before the end of the stack, each
        also told in a ``UserWarning``; empty for the other modes.

    Warns
    -----
    UserWarning
        ``mode="propagate"``: for every stop before the end of the stack (slice and reason).
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(map(repr, MODES))}.")
    if executor is not None and mode != "independent":
        raise ValueError(f"an executor parallelises mode='independent' only; mode={mode!r} runs in order.")
    if not (np.isfinite(max_area_ratio) and max_area_ratio > 1):
        raise ValueError(f"`max_area_ratio` must be a number > 1, got {max_area_ratio!r}.")
    if not hasattr(image, "shape"):
        image = np.asarray(image)
    start = np.asarray(start)
    axis, start_axis, slice_channel_axis = _normalise_axes(image, start, axis, channel_axis)
    if mode != "full3d" and image.ndim - (channel_axis is not None) < 3:
        raise ValueError(
            f"mode={mode!r} (CLI: --stack {mode}) segments a stack slice by slice, but this image has 2 spatial "
            f"axes {image.shape}: each slice would be a line. Segment it whole (no --stack, or mode='full3d').")
    n = image.shape[axis]
    options = dict(method=method, scope=scope, **params)

    if mode == "full3d":
        labels = segment(np.asarray(image), start, channel_axis=channel_axis, spacing=spacing, **options)
        for i in range(n):
            yield i, np.take(labels, i, axis=start_axis), i + 1, n
        return []

    spatial_ndim = image.ndim - (channel_axis is not None)
    options.update(channel_axis=slice_channel_axis,
                   spacing=_slice_spacing(spacing, spatial_ndim, start_axis))

    def image_slice(i):  # indexing (not np.take) reads one slice of a dask or zarr array
        return np.asarray(image[(slice(None),) * axis + (i,)])

    if mode == "independent":
        if start.ndim == spatial_ndim - 1:
            starts = [start] * n
        else:
            annotated = _check_stack_start(start, image, axis, start_axis, spatial_ndim)
            nearest = annotated[np.argmin(np.abs(np.arange(n)[:, None] - annotated[None, :]), axis=1)]
            starts = [np.take(start, j, axis=start_axis) for j in nearest]
        slices = ((i, segment(image_slice(i), starts[i], **options), i + 1, n) for i in range(n)) \
            if executor is None else _independent_in_parallel(executor, image_slice, starts, options)
        flooded = []
        for i, labels, done, total in slices:
            if np.count_nonzero(labels) > 0.5 * labels.size > np.count_nonzero(starts[i]):
                flooded.append(i)
            yield i, labels, done, total
        if flooded:
            warnings.warn(
                f"{len(flooded)} of {n} slices came out more than half labelled from a start that marks "
                f"less (slices {', '.join(map(str, sorted(flooded)[:10]))}{', ...' if len(flooded) > 10 else ''}): "
                f"on them the marks probably fall on background. Check those slices, or draw the start "
                f"on each (a stack-shaped start) or use mode 'propagate'.", UserWarning, stacklevel=2)
        return []

    annotated = _check_stack_start(start, image, axis, start_axis, spatial_ndim)
    if refit_annotated is None:
        refit_annotated = scope == "object"
    results = {int(a): np.take(start, a, axis=start_axis) for a in annotated}
    order = _propagation_order(annotated, n)
    total = len(order) + (len(annotated) if refit_annotated else 0)
    done = 0
    if refit_annotated:  # the marks are starts: the annotated slices' objects first, the marks kept
        for a in results:
            results[a] = segment(image_slice(a), results[a], seeds=results[a], **options)
            done += 1
            yield a, results[a], done, total
    root = {int(a): int(a) for a in annotated}  # the annotated slice each slice descends from
    reference = {int(a): label_contrasts(results[int(a)], image_slice(int(a)), slice_channel_axis) for a in annotated}
    stops = []
    for i, neighbour in order:
        previous = results[neighbour]
        labels = np.zeros_like(previous)
        if previous.any():
            current = image_slice(i)
            labels = segment(current, previous, **options)
            labels, lost = drop_lost(labels, previous, max_area_ratio, min_area)
            if "leaked" in lost.values() and options.get("scope") == "object" and "reach" not in params:
                # a leak: once more with the object kept near its neighbour's (a leaked label only)
                leaked = np.isin(previous, [v for v, why in lost.items() if why == "leaked"])
                near = segment(current, np.where(leaked, previous, 0), **{**options, "reach": RETRY_REACH})
                near, lost_again = drop_lost(near, previous * leaked, max_area_ratio, min_area)
                labels = np.where(near > 0, near, labels)
                lost = {v: why for v, why in lost.items() if why != "leaked"} | lost_again
            labels, changed = drop_changed(labels, current, slice_channel_axis, reference[root[neighbour]],
                                            min_contrast, max_drift)
            for value, reason in {**lost, **changed}.items():
                stops.append(StackStop(int(value), int(i), int(i - neighbour), reason))
                warnings.warn(f"slice-by-slice propagation: {stops[-1]}; it is left out of that slice and "
                              f"the slices beyond. Check slice {i}, or annotate it there and run again.",
                              UserWarning, stacklevel=2)
        root[i] = root[neighbour]
        results[i] = labels
        done += 1
        yield i, labels, done, total
    return stops


def _independent_in_parallel(executor, image_slice, starts, options):
    futures = {executor.submit(segment, image_slice(i), starts[i], **options): i for i in range(len(starts))}
    try:
        for done, future in enumerate(_as_completed(executor, list(futures)), start=1):
            yield futures[future], future.result(), done, len(starts)
    finally:  # closing the generator cancels what has not run yet
        for future in futures:
            future.cancel()


def _as_completed(executor, futures):
    if hasattr(executor, "scheduler_info"):  # a dask.distributed Client
        from dask.distributed import as_completed
    else:
        from concurrent.futures import as_completed
    return as_completed(futures)


def _check_stack_start(start, image, axis, start_axis, spatial_ndim):
    if start.ndim != spatial_ndim:
        raise ValueError(
            f"`start` has shape {start.shape}; for a stack it needs the stack's spatial shape "
            f"({spatial_ndim} axes, the stack axis included)."
        )
    if start.shape[start_axis] != image.shape[axis]:
        raise ValueError(
            f"`start` has {start.shape[start_axis]} slices along the stack axis but the image has "
            f"{image.shape[axis]}; draw the start on the same stack."
        )
    annotated = _annotated(start, start_axis)
    if annotated.size == 0:
        raise ValueError("`start` marks nothing (all zeros); label the object on at least one slice.")
    return annotated


def fill_stack(out, image, start, *, mode="propagate", axis=0, lock=None, **kwargs):
    """Write every slice of :func:`iter_stack` into ``out`` as soon as it is done.

    The one place where a stack's slices are assembled into a volume: used by
    :func:`segment_stack` and by the napari widget, which shows ``out`` while it fills.

    Parameters
    ----------
    out : ndarray
        The label volume to fill, the start's spatial shape (slices along ``axis`` of the
        image, counted without its channel axis). Slices that are not recomputed (the
        annotated ones in ``'propagate'`` mode, unless ``refit_annotated``) are left as they are.
    image, start, mode, axis, **kwargs
        As for :func:`iter_stack`.
    lock : context manager, optional
        Held while a slice is written (for example a :class:`threading.Lock`), so that
        another thread reading ``out`` under the same lock never sees half a slice.

    Yields
    ------
    index : int
        The slice just written.
    done, total : int
        As for :func:`iter_stack`.

    Returns
    -------
    stops : list of StackStop
        As for :func:`iter_stack` (the generator's return value: ``stops = yield from
        fill_stack(...)``, or ``StopIteration.value``).
    """
    start_axis = _start_axis(image, axis, kwargs.get("channel_axis"))
    lock = nullcontext() if lock is None else lock
    slices = iter_stack(image, start, mode=mode, axis=axis, **kwargs)
    try:
        while True:
            try:
                index, labels, done, total = next(slices)
            except StopIteration as end:
                return end.value
            with lock:
                out[(slice(None),) * start_axis + (index,)] = labels
            yield index, done, total
    finally:
        slices.close()


def segment_stack(image, start, *, mode="propagate", axis=0, progress=None, return_stops=False, **kwargs):
    """Segment a whole stack and return its label volume (see :func:`iter_stack`).

    Parameters
    ----------
    image, start, mode, axis, **kwargs
        As for :func:`iter_stack`.
    progress : callable, optional
        Called as ``progress(done, total)`` after every slice.
    return_stops : bool
        Also return where and why propagation stopped.

    Returns
    -------
    labels : ndarray
        The start's shape and dtype: annotated slices as drawn (``'propagate'``, unless
        ``refit_annotated``), every other slice segmented.
    stops : list of StackStop
        Only with ``return_stops=True``: see :func:`iter_stack`.
    """
    start = np.asarray(start)
    image_ndim = len(np.shape(image))
    start_axis = _start_axis(image, axis, kwargs.get("channel_axis"))
    if start.ndim == image_ndim - (kwargs.get("channel_axis") is not None) - 1:  # one slice's start
        shape = list(start.shape)
        shape.insert(start_axis, np.shape(image)[axis])
        out = np.zeros(shape, dtype=start.dtype)
    else:
        out = start.copy()
    filling = fill_stack(out, image, start, mode=mode, axis=axis, **kwargs)
    while True:
        try:
            _, done, total = next(filling)
        except StopIteration as end:
            stops = end.value
            break
        if progress is not None:
            progress(done, total)
    return (out, stops) if return_stops else out
