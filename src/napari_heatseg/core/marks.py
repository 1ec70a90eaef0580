"""The user's corrections: seeds, background marks and the result to evolve from.

Annotators correct a result with positive clicks or strokes (``seeds``: "these voxels are
label k"), negative ones (``background``: "these voxels are no label") and re-run from the
current result (``initial``). This module checks them against the start and turns them into
the phase indices every method works with; :mod:`.scope` puts them in place.
"""

from typing import NamedTuple

import numpy as np

__all__ = ["Marks", "check_marks", "start_with_seeds"]


class Marks(NamedTuple):
    """Marks as phase indices on the prepared grid (None where not given)."""

    seeds: np.ndarray | None
    background: np.ndarray | None
    initial: np.ndarray | None


def _as_label_array(value, name, shape, what):
    array = np.asarray(value)
    if array.shape != tuple(shape):
        raise ValueError(f"`{name}` has shape {array.shape} but the image's spatial shape is {tuple(shape)}; "
                         f"draw {what} on the same grid as the start.")
    if array.dtype == bool:
        return array.astype(np.uint8)
    if not np.issubdtype(array.dtype, np.integer):
        if not (np.issubdtype(array.dtype, np.floating) and np.all(np.isfinite(array))
                and np.all(array == np.round(array))):
            raise TypeError(f"`{name}` must hold integer labels (0 = none), got dtype {array.dtype} "
                            f"with values that are not whole numbers; pass an integer array.")
        array = array.astype(np.int64)
    if array.dtype.kind == "i" and array.size and array.min() < 0:
        raise ValueError(f"`{name}` has negative values (smallest {array.min()}); use 0 for none and "
                         f"positive label values.")
    return array


def start_with_seeds(start, seeds):
    """The start to prepare: ``start``, or the seeds where ``start`` marks nothing (a click
    alone starts an object; the start's checks then apply to the seeds)."""
    if seeds is None or start is None:
        return start
    start_array = np.asarray(start)
    if start_array.dtype.kind not in "biuf" or start_array.any():
        return start
    seeds = _as_label_array(seeds, "seeds", start_array.shape, "the seeds")
    return seeds > 0 if start_array.dtype == bool else seeds.astype(start_array.dtype, copy=False)


def check_marks(prepared, seeds=None, background=None, initial=None):
    """Check the marks against the prepared start and give them as phase indices.

    Parameters
    ----------
    prepared : Prepared
        The prepared image and start (its label values name the phases).
    seeds : (...) array of int, optional
        0 = none, k > 0 = "these voxels are label k" (a label of the start).
    background : (...) array of bool, optional
        "These voxels are no label".
    initial : (...) array of int, optional
        The labels to evolve from (the current result), with the start's label values.

    Returns
    -------
    Marks

    Raises
    ------
    ValueError, TypeError
        For marks of the wrong shape or kind, seeds or initial labels the start does not
        have, and voxels marked both as a seed and as background.
    """
    shape = prepared.spatial_shape
    seed_phases = None if seeds is None else _phases(seeds, "seeds", prepared, "the seeds")
    fixed_background = None
    if background is not None:
        array = np.asarray(background)
        if array.shape != tuple(shape):
            raise ValueError(f"`background` has shape {array.shape} but the image's spatial shape is "
                             f"{tuple(shape)}; draw the background marks on the same grid as the start.")
        if array.dtype != bool and not (np.issubdtype(array.dtype, np.number) and np.isin(array, (0, 1)).all()):
            raise TypeError(f"`background` must be a boolean mask (True = no label here), got dtype "
                            f"{array.dtype}; pass for example `marks == 0` or a bool array.")
        fixed_background = array.astype(bool)
        if seed_phases is not None:
            both = np.count_nonzero(fixed_background & (seed_phases > 0))
            if both:
                raise ValueError(f"{both} voxel(s) are marked both as a seed and as background; a voxel "
                                 f"can only be one: remove the wrong mark (the last click or stroke).")
    initial_phases = None if initial is None else _phases(initial, "initial", prepared, "the initial labels")
    return Marks(seed_phases, fixed_background, initial_phases)


def _phases(value, name, prepared, what):
    """Label values of the start -> phase indices 1..K; raises for values the start lacks."""
    array = _as_label_array(value, name, prepared.spatial_shape, what)
    values = prepared.label_values
    if values.dtype == bool:
        return (array > 0).astype(np.int32)
    present = np.unique(array)
    present = present[present != 0]
    unknown = present[~np.isin(present, values.astype(np.int64))]
    if unknown.size:
        raise ValueError(f"`{name}` holds label(s) {', '.join(map(str, unknown[:10].tolist()))} that the start "
                         f"does not have (its labels: {', '.join(map(str, values[:10].tolist()))}); mark "
                         f"with the start's labels, or add the label to the start.")
    phases = np.zeros(array.shape, np.int32)
    marked = array != 0
    phases[marked] = np.searchsorted(values.astype(np.int64), array[marked].astype(np.int64)) + 1
    return phases
