"""Writing results into napari layers: the preview layer and the undoable Apply."""

import numpy as np

from ._inputs import LayerChoiceError

__all__ = ["PREVIEW_COLOUR", "PREVIEW_CONTOUR", "PREVIEW_NAME", "add_preview", "apply_labels", "fresh_preview",
           "show_state", "spatial_transform"]

#: A state whose changed box holds more than this share of the preview is drawn whole.
PARTIAL_SHARE = 0.25

PREVIEW_NAME = "heatseg preview"
#: Every id of the preview in one cyan, drawn as an outline of this many pixels: it stands out
#: on the red, orange and brown of typical objects, and from the green / magenta marks, and
#: the image stays visible inside it (touching objects keep the contour between them).
PREVIEW_COLOUR, PREVIEW_CONTOUR = "#00d8ff", 2


def spatial_transform(layer, layer_channel_axis=None):
    """``scale`` and ``translate`` of ``layer`` along its spatial axes."""
    keep = [a for a in range(layer.ndim) if a != layer_channel_axis]
    return (tuple(float(layer.scale[a]) for a in keep), tuple(float(layer.translate[a]) for a in keep))


def _add_preview_layer(viewer, shape, dtype, scale, translate):
    from napari.utils.colormaps import DirectLabelColormap

    colormap = DirectLabelColormap(color_dict={None: PREVIEW_COLOUR, 0: "transparent"})
    preview = viewer.add_labels(np.zeros(shape, dtype), name=PREVIEW_NAME, scale=scale, translate=translate,
                                colormap=colormap)
    preview.contour = PREVIEW_CONTOUR  # not a keyword of add_labels
    return preview


def add_preview(viewer, shape, dtype, scale, translate):
    """Add an empty preview layer, leaving the layer the user works on active."""
    active = viewer.layers.selection.active
    preview = _add_preview_layer(viewer, shape, dtype, scale, translate)
    if active is not None and active in viewer.layers:
        viewer.layers.selection.active = active
    return preview


def fresh_preview(viewer, preview, shape, dtype, scale, translate, clear=True):
    """The preview layer for a run on a grid of ``shape`` and ``dtype``, reused when it can be.

    A preview of the same shape and dtype is kept (emptied first if ``clear``) and filled
    in place: a new array makes napari rebuild the layer's view. A missing preview is
    added (the active layer stays active); one of another shape or dtype gets new (empty) data.
    Each change redraws the layer (30-50 ms at 1024² here), so only what differs is set, and
    emptying does not redraw: the run's first state is drawn whole over it.

    Returns
    -------
    preview : napari.layers.Labels
    emptied : bool
        True if the preview's data was emptied without redrawing it (the caller redraws).
    """
    if preview is None or preview not in viewer.layers:
        return add_preview(viewer, shape, dtype, scale, translate), False
    emptied = False
    if preview.data.shape == tuple(shape) and preview.data.dtype == dtype:
        if clear and preview.data.any():
            preview.data[...] = 0
            emptied = True
    else:  # nothing to keep
        preview.data = np.zeros(shape, dtype)
    if tuple(preview.scale) != tuple(scale):
        preview.scale = scale
    if tuple(preview.translate) != tuple(translate):
        preview.translate = translate
    return preview, emptied


def show_state(layer, labels, region=(...,), box=None):
    """Write the state ``labels`` into the preview ``layer`` at ``region`` and show it.

    ``box`` (slices of ``labels``) holds every voxel that changed since the state shown
    before (``()``: none; None: unknown). A small box is written through
    ``Labels.data_setitem``, which recolours only the voxels it changes (as napari does for
    a brush stroke: about 2 ms for a 270² box at 1024² here, where a ``refresh()``
    recolours and re-contours the whole slice shown, 30-50 ms). A box of more than
    :data:`PARTIAL_SHARE` of the layer is written in place and refreshed whole.
    """
    if box is not None and not box:
        return  # nothing changed
    target = layer.data[region]
    if box is None or np.prod([s.stop - s.start for s in box]) > PARTIAL_SHARE * target.size:
        target[...] = labels
        layer.refresh()
        return
    new = labels[box]
    moved = np.nonzero(np.asarray(target[box]) != new)
    if not moved[0].size:
        return
    offset = [index for index in region if isinstance(index, int)]  # the slice of a 3D layer
    indices = tuple(np.full(moved[0].size, index) for index in offset) + tuple(
        where + s.start for where, s in zip(moved, box))
    layer.data_setitem(indices, new[moved])


def apply_labels(target, labels, *, only_unlabelled=True, metadata=None):
    """Write the nonzero voxels of ``labels`` into the Labels layer ``target``, undoably.

    The change goes through ``Labels.data_setitem`` inside ``block_history``, so it is
    one undo step (Ctrl+Z in the viewer, or ``target.undo()``).

    Parameters
    ----------
    target : napari.layers.Labels
    labels : ndarray of int
        Same shape as ``target.data``; 0 = leave the target as it is.
    only_unlabelled : bool
        True: only voxels where the target is 0 change, so existing labels are never
        altered. False: every nonzero voxel of ``labels`` overwrites the target.
    metadata : dict, optional
        Appended to ``target.metadata['heatseg']`` (what produced the labels).

    Returns
    -------
    changed : int
        Number of voxels whose value changed.
    """
    data = target.data
    if tuple(data.shape) != labels.shape:
        raise LayerChoiceError(f"target layer {target.name!r} has shape {tuple(data.shape)} but the result "
                               f"has shape {labels.shape}; pick a Labels layer of the image's shape or "
                               "'new layer'.")
    write = labels > 0
    if only_unlabelled:
        write &= np.asarray(data) == 0
    indices = np.nonzero(write)
    values = labels[indices]
    dtype = np.dtype(data.dtype)
    if values.size and np.issubdtype(dtype, np.integer) and values.max() > np.iinfo(dtype).max:
        raise LayerChoiceError(f"label {values.max()} does not fit target layer {target.name!r} "
                               f"({dtype}); pick another target or 'new layer'.")
    before = np.asarray(data[indices])
    changed = int(np.count_nonzero(before != values))
    if changed:
        with target.block_history():
            target.data_setitem(indices, values.astype(dtype))
    if metadata is not None:
        target.metadata.setdefault("heatseg", []).append(dict(metadata, changed_voxels=changed,
                                                              only_unlabelled=only_unlabelled))
    return changed
