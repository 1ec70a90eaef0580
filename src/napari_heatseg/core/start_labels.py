"""The start's labels: their checks, and the map between label values and phase indices.

Every method works on phases 0..K (0 = unmarked, K labels). :func:`check_start_labels`
checks the user's start (shape against the image, dtype, sign, whole numbers, something
marked) and compacts its label values to phases; :func:`restore_labels` maps phases back
to the start's values and dtype. Each check raises a ``TypeError`` (wrong kind of value) or
``ValueError`` (wrong value) whose message says what was received and what to pass.
"""

import numpy as np

__all__ = ["check_labels_have_data", "check_start_labels", "phase_dtype", "refuse_labels_without_data", "restore_labels"]


def check_start_labels(start, spatial_shape, raw_shape, channel_axis):
    """Check the start (an array, as ``inputs._as_array`` returns it) against the image.

    Returns
    -------
    phases : uint8 ndarray (int32 from 256 labels on, :func:`phase_dtype`)
        The start's labels as phase indices 1..K (0 = unmarked).
    values : ndarray
        The K label values, sorted, in the start's dtype (``[True]`` for a bool start).
    """
    if start.shape != tuple(spatial_shape):
        given = " (no channel axis given: every axis is spatial)" if channel_axis is None else ""
        raise ValueError(f"`start` has shape {start.shape} but the image's spatial shape is "
                         f"{tuple(spatial_shape)}{given}." + _shape_hint(tuple(raw_shape), start.shape, channel_axis))
    if start.dtype == bool:
        values = np.array([True]) if start.any() else np.array([], dtype=bool)
        phases = start.astype(np.uint8)
    else:
        _check_label_dtype(start)
        if start.dtype.kind != "u" and np.any(start < 0):
            raise ValueError(
                f"`start` has negative labels (smallest {start.min()}); use 0 for unmarked and "
                f"positive integers for labels."
            )
        values = _label_values(start)
        dtype = phase_dtype(values.size)
        if np.array_equal(values, np.arange(1, values.size + 1)):  # already compact: 1, 2, ...
            phases = start.astype(dtype)
        else:
            phases = np.zeros(start.shape, dtype=dtype)
            marked = start != 0
            phases[marked] = np.searchsorted(values, start[marked]) + 1
    if values.size == 0:
        raise ValueError(
            "`start` marks nothing (all zeros); draw at least one label (a value > 0) on the "
            "object to segment."
        )
    return phases, values


def _shape_hint(raw_shape, start_shape, channel_axis):
    """Explain a start/image shape mismatch: which channel_axis would make them agree."""
    fits = [a for a in range(len(raw_shape)) if raw_shape[:a] + raw_shape[a + 1:] == start_shape]
    if fits:
        options = " or ".join(f"channel_axis={a - len(raw_shape) if a == len(raw_shape) - 1 else a}"
                              for a in fits)
        if channel_axis is None:
            return f" The image has one axis more than the start: if it holds channels, pass {options}."
        if len(fits) > 1:
            return f" Several axes could hold the channels ({options}): pass the right one."
        return f" channel_axis={channel_axis} looks wrong for this start: pass {options}."
    if channel_axis is None and sorted(raw_shape) == sorted(start_shape):
        return " The axes are in a different order: transpose the start to the image's axis order."
    return " Draw the start on the same grid as the image (same shape, no channel axis)."


def phase_dtype(n_labels):
    """The smallest integer type of phase maps with ``n_labels`` labels (one byte up to 255:
    a volume's start then costs a byte per voxel, not four)."""
    return np.uint8 if n_labels < 256 else np.int32


_COUNTED_AT_ONCE = 2**22  # voxels per bincount: its index copy stays small


def _label_values(start):
    """The distinct nonzero values of a non-negative label array, sorted, in its dtype."""
    if start.dtype.kind in "ui" and start.size and start.max() < 2**16:  # counting beats sorting
        flat, length = start.ravel(), int(start.max()) + 1
        counts = sum(np.bincount(flat[i:i + _COUNTED_AT_ONCE], minlength=length)
                     for i in range(0, flat.size, _COUNTED_AT_ONCE))[1:]
        return (np.flatnonzero(counts) + 1).astype(start.dtype)  # the start's dtype, byte order included
    values = np.unique(start)
    return values[values != 0]


def _check_label_dtype(start):
    if np.issubdtype(start.dtype, np.integer):
        return
    if np.issubdtype(start.dtype, np.floating):
        if not np.all(np.isfinite(start)):
            raise ValueError(
                "`start` has NaN or inf values; labels must be whole numbers: set unmarked "
                "pixels to 0 (for example np.nan_to_num(start)) and pass integer labels."
            )
        if np.all(start == np.round(start)):
            return
        raise ValueError(
            "`start` has fractional values, but labels must be whole numbers; if it is a "
            "probability map, threshold it (start > 0.5), otherwise convert it with start.astype(int)."
        )
    raise TypeError(
        f"`start` must hold integer labels (or bool), got dtype {start.dtype}; "
        f"pass an integer or bool array."
    )


def check_labels_have_data(phases, valid, values):
    """Every label must mark at least one finite pixel, or its region model is undefined."""
    if valid.all():
        return
    refuse_labels_without_data(values, np.bincount(phases[valid], minlength=len(values) + 1)[1:])


def refuse_labels_without_data(values, seen):
    """Raise for the labels among ``values`` whose count of finite marked voxels ``seen`` is 0."""
    empty = values[np.asarray(seen) == 0]
    if empty.size:
        raise ValueError(
            f"label(s) {', '.join(map(str, empty.tolist()))} of `start` lie only on NaN/inf pixels "
            f"of the image, so nothing tells what they look like; draw each label on some finite "
            f"pixels (or fill the image's non-finite pixels first)."
        )


def restore_labels(phases, prepared):
    """Map phase indices 0..K back to the start's label values, in the start's dtype."""
    values = prepared.label_values
    if np.array_equal(values, np.arange(1, values.size + 1)):  # labels 1..K (or True): a cast
        return phases.astype(values.dtype)
    table = np.zeros(values.size + 1, values.dtype)  # (concatenate would drop a big-endian order)
    table[1:] = values
    return table[phases]
