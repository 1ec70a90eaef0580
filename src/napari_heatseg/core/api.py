"""The public entry points: :func:`segment`, :func:`evolve`, :func:`methods` and :func:`warm_up`."""

import inspect
from functools import partial
from typing import NamedTuple

import numpy as np

from . import baselines, ictm
from ._memory import check_memory, estimate_memory, refuse_if_too_big
from .inputs import prepare, warn_constant_image
from .instances import instances as split_instances
from .marks import check_marks, start_with_seeds
from .scope import make_scope
from .seeding import seed_along_stack
from .start_checks import check_start, warn_if_inside_found_nothing
from .start_labels import restore_labels

__all__ = ["Step", "evolve", "methods", "segment", "warm_up"]

DEFAULT_METHOD = "heat"


class Step(NamedTuple):
    """One state of an evolution, as yielded by :func:`evolve`."""

    iteration: int
    labels: np.ndarray
    energy: float  # NaN for methods that have no energy


def methods():
    """Names accepted by ``method=``: ``"heat"`` first, then every baseline."""
    return [DEFAULT_METHOD, *baselines.BASELINES]


def _runner(method):
    if method == DEFAULT_METHOD:
        return ictm.threshold_dynamics
    try:
        return baselines.BASELINES[method]
    except (KeyError, TypeError):
        raise ValueError(f"unknown method {method!r}; choose one of {methods()}.") from None


def _check_params(runner, method, params):
    if method == DEFAULT_METHOD:  # names and values, as the chunked backend checks them
        ictm.HeatParameters.from_keywords(**{k: v for k, v in params.items() if k != "iter_callback"})
        return
    accepted = [name for name, p in inspect.signature(runner).parameters.items() if p.kind == p.KEYWORD_ONLY]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise TypeError(
            f"method {method!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"its parameters are: {', '.join(accepted) or 'none'}."
        )
    runner.check_parameters(**params)  # values: finite and in range (baselines._task.baseline)


def evolve(image, start, *, method=DEFAULT_METHOD, channel_axis=None, spacing=None,
           scope=None, seeds=None, background=None, initial=None, instances=False, **params):
    """Evolve ``start`` into a segmentation of ``image``, yielding intermediate states.

    Takes the same arguments as :func:`segment`. Inputs are checked before the
    generator is returned, so bad input raises here, not at the first ``next``.

    Yields
    ------
    step : Step
        ``(iteration, labels, energy)``: the labels after ``iteration`` updates, in the
        start's dtype and label values, and the energy of that state (non-increasing for
        ``method="heat"``; NaN for baselines without an energy). Closing the generator
        (or dropping it) stops the work.
    """
    runner = _runner(method)
    _check_params(runner, method, params)
    prepared = check_start(prepare(image, start_with_seeds(start, seeds), channel_axis=channel_axis,
                                   spacing=spacing, scope=scope))
    marks = check_marks(prepared, seeds, background, initial)
    prepared, drawn = seed_along_stack(prepared)  # a box on one slice of a volume: grow along the stack
    constraints = make_scope(prepared, marks.seeds, marks.background, marks.initial, anchor=drawn)
    if method == DEFAULT_METHOD:
        check_memory(prepared.spatial_shape, prepared.n_labels, prepared.image.shape[-1], **params)
        states = runner(prepared, constraints, initial=marks.initial, **params)  # checks now, runs lazily
    else:
        size = (prepared.spatial_shape, prepared.n_labels, prepared.image.shape[-1])
        refuse_if_too_big(baselines.memory_bytes(method, *size), prepared.spatial_shape,
                          f"method {method!r} and {prepared.n_labels} label(s)", estimate_memory(*size))
        states = _single_state(lambda: constraints.fix(runner(prepared, constraints, **params)))
    if prepared.is_constant:
        warn_constant_image()
        kept = prepared.phases if marks.initial is None else marks.initial
        states = _single_state(lambda: constraints.fix(kept.copy()))
    if not isinstance(instances, (bool, np.bool_)):
        raise TypeError(f"`instances` must be True or False, got {instances!r}.")
    # the start and the seeds say what one object looks like
    split = partial(_objects, spacing=prepared.spacing, marks=constraints.marks) if instances else None
    return _as_steps(states, prepared, split)


def _objects(phases, spacing, marks):
    return split_instances(phases > 0, spacing=spacing, marks=marks)


def _single_state(compute):
    yield 1, compute(), float("nan")


def _as_steps(states, prepared, split=None):
    phases = None
    for iteration, phases, energy in states:
        labels = restore_labels(phases, prepared) if split is None else split(phases)
        yield Step(iteration, labels, float(energy))
    if phases is not None:
        warn_if_inside_found_nothing(phases, prepared)


def segment(image, start, *, method=DEFAULT_METHOD, channel_axis=None, spacing=None,
            scope=None, seeds=None, background=None, initial=None, instances=False, **params):
    """Segment ``image`` starting from the labels drawn in ``start``.

    Parameters
    ----------
    image : (M, N[, P][, C]) array_like
        2D or 3D image, with one channel axis if ``channel_axis`` is given. Any real
        dtype and intensity scale: each channel is normalised robustly, so results do
        not change when the image is scaled and shifted. NaN/inf pixels carry no data.
    start : (M, N[, P]) array_like of int or bool
        The rough start: 0 = not marked, each value > 0 is a label (a phase). A start
        whose many values are the grades of one mask (a soft-edged brush stroke, a mask
        saved as JPEG) is binarised at half its maximum, with a warning.
    method : str, optional
        ``"heat"`` (threshold dynamics with the heat semigroup) or any name from
        :func:`methods`.
    channel_axis : int or None, optional
        Axis of ``image`` holding channels (``-1`` for RGB); None for grey images.
    spacing : sequence of float, optional
        Physical voxel size per spatial axis (napari's layer ``scale``); None = 1.
    scope : {None, 'object', 'inside', 'all'}, optional
        Where the answer may lie. ``'inside'``: within the marked region (a box or
        lasso drawn around the object), against a background learned from a band around
        it; a warning says when it finds nothing. ``'object'``: one connected object per
        label, grown or shrunk from the mark, against its local background. ``'all'``:
        everything in the image that looks like the marked regions. None (the default):
        ``'inside'`` if every label is a box drawn around something (a filled rectangle,
        cuboid, or convex polygon or ellipse that is not round, whose middle differs from
        the band around it), else ``'object'`` (see :mod:`napari_heatseg.core.start_checks`).
    seeds : (M, N[, P]) array_like of int, optional
        Corrections: 0 = none, k > 0 = "these voxels are label k" (positive clicks,
        scribbles, brush fixes), with the start's label values. Fixed for the whole run;
        they also train label k's region model. A seed outside an ``'inside'`` region
        widens the region to reach it. ``start`` may be all zero when ``seeds`` holds a
        label (a click alone starts an object).
    background : (M, N[, P]) array_like of bool, optional
        Corrections: "these voxels are no label" (negative clicks, background strokes).
        Fixed as background; they train the background model.
    initial : (M, N[, P]) array_like of int, optional
        The labels to evolve from (the current result, with the start's label values);
        default: ``start``. The start still says where the answer may lie (the scope).
    instances : bool, optional
        One id per object (1..N, in the smallest unsigned dtype that holds N): the result's
        foreground is split by :func:`napari_heatseg.core.instances.instances`, with the
        start and seeds as the marks that say how large one object is (use with
        ``scope="all"``: "mark a few, find them all").
    **params
        Method parameters (for ``"heat"``, see
        :class:`napari_heatseg.core.ictm.HeatParameters`).

    Returns
    -------
    labels : (M, N[, P]) ndarray
        Segmentation with the start's label values and dtype (0 = background); with
        ``instances=True``, object ids.

    Examples
    --------
    >>> import numpy as np
    >>> import napari_heatseg as hs
    >>> yy, xx = np.mgrid[:64, :64]
    >>> image = ((yy - 32) ** 2 + (xx - 32) ** 2 < 15 ** 2).astype(float)
    >>> start = np.zeros(image.shape, dtype=np.uint8)
    >>> start[28:36, 28:36] = 1
    >>> labels = hs.segment(image, start)
    >>> int(labels.sum()) in range(650, 760)  # the disk of radius 15 (area 707)
    True
    """
    last = None
    for last in evolve(image, start, method=method, channel_axis=channel_axis, spacing=spacing,
                       scope=scope, seeds=seeds, background=background, initial=initial, instances=instances,
                       **params):
        pass
    return last.labels


def warm_up():
    """Do now what would otherwise hold up the first segmentation of a session.

    ``import napari_heatseg`` loads nothing heavy; the first run would import the solver
    (numpy, scipy, numba, OpenCV) and compile its loops or load them from numba's disk
    cache (about half a second each on two cores; the compilation right after installing
    takes a few seconds). This does both, for every kind of input a run gives the loops;
    later calls cost microseconds. Call it on a thread at start-up, as the napari widget
    does when an image is picked. Results do not depend on it.
    """
    from .ictm.kernels import warm_up as load_compiled_loops

    load_compiled_loops()
