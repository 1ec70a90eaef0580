"""Typed inputs of one run, gathered from napari layers.

Everything here is checked on the main thread before a worker starts, so a user who
picks incompatible layers gets a message naming the problem and the fix
(:class:`LayerChoiceError`), and nothing is computed.
"""

from dataclasses import dataclass, field

import numpy as np

__all__ = ["LayerChoiceError", "SegmentInputs", "WHERE", "image_data", "labels_start",
           "parse_label_ids", "spatial_layout"]

#: Where the run happens: label shown in the widget -> internal name.
WHERE = {
    "current slice": "slice",
    "whole image/volume": "volume",
    "slice by slice": "propagate",
}


class LayerChoiceError(ValueError):
    """The chosen layers cannot be segmented together; the message says what to do."""


@dataclass(frozen=True)
class SegmentInputs:
    """Everything one run needs, with the image already in core layout.

    Attributes
    ----------
    image : (M, N[, P][, C]) ndarray
        The image; channels, if any, on the last axis.
    start : (M, N[, P]) ndarray of int
        The start labels (0 = unmarked), a copy owned by the run.
    method, scope : str
        Core method name and scope.
    where : {'slice', 'volume', 'propagate'}
        The current 2D slice (``slice_index`` of axis 0), the whole image, or
        slice-by-slice propagation along axis 0.
    channel_axis : int or None
        ``-1`` if ``image`` has channels, else None.
    spacing : tuple of float
        Physical voxel size per spatial axis (the image layer's scale).
    slice_index : int or None
        Index along axis 0 for ``where='slice'`` on a 3D image.
    params : dict
        Method parameters passed to the core as keywords.
    instances : bool
        One id per object (the core's ``instances=True``); the preview then needs a dtype
        that holds many ids (:attr:`labels_dtype`).
    seeds, background, initial : ndarray or None
        The user's corrections on the full spatial grid (see :func:`napari_heatseg.segment`):
        voxels fixed to a label, voxels fixed to no label, and the result to evolve from.
    """

    image: np.ndarray
    start: np.ndarray
    method: str = "heat"
    scope: str = "object"
    where: str = "volume"
    channel_axis: int | None = None
    spacing: tuple = ()
    slice_index: int | None = None
    params: dict = field(default_factory=dict)
    instances: bool = False
    seeds: np.ndarray | None = None
    background: np.ndarray | None = None
    initial: np.ndarray | None = None

    @property
    def spatial_ndim(self):
        return self.start.ndim

    @property
    def labels_dtype(self):
        """dtype of the result: the start's, or int32 for one id per object."""
        return np.dtype(np.int32) if self.instances else self.start.dtype

    def region(self):
        """Index into the full spatial grid that this run writes (``...`` = everything)."""
        if self.where == "slice" and self.spatial_ndim == 3:
            return (self.slice_index,)
        return (...,)

    def as_core_arguments(self):
        """Keyword arguments for :func:`napari_heatseg.evolve` on this run's region."""
        spacing = self.spacing
        if self.where == "slice" and self.spatial_ndim == 3:
            spacing = spacing[1:]
        marks = {name: getattr(self, name)[self.region()] for name in ("seeds", "background", "initial")
                 if getattr(self, name) is not None}
        split = {"instances": True} if self.instances else {}
        return dict(method=self.method, channel_axis=self.channel_axis,
                    spacing=tuple(spacing), scope=self.scope, **split, **marks, **self.params)

    def core_image_and_start(self):
        """``(image, start)`` for the region of this run."""
        region = self.region()
        return self.image[region], self.start[region]

    def metadata(self):
        """What produced the result, for the result layer's ``metadata``."""
        return {"method": self.method, "scope": self.scope, "where": self.where,
                "slice_index": self.slice_index, "spacing": list(map(float, self.spacing)),
                "params": dict(self.params), "instances": self.instances,
                "seeds": 0 if self.seeds is None else int(np.count_nonzero(self.seeds)),
                "background": 0 if self.background is None else int(np.count_nonzero(self.background)),
                "from_result": self.initial is not None}


def spatial_layout(layer, channel="auto"):
    """Where the channels of an image layer are, without reading its data.

    Parameters
    ----------
    layer : napari.layers.Image
    channel : {'auto', 'none', 'first', 'last'}
        Which data axis holds channels. ``'auto'``: the colour axis of an RGB(A)
        layer, else none.

    Returns
    -------
    spatial_shape, spacing : tuple
        Shape and scale of the layer along its spatial axes.
    layer_channel_axis : int or None
        The channel axis among the layer's own dimensions (None for RGB or grey), so
        that world coordinates can be mapped to spatial ones.
    """
    if layer.multiscale:
        raise LayerChoiceError(
            f"image layer {layer.name!r} is multiscale; open its full-resolution level as a "
            "plain image layer to segment it.")
    shape, scale = tuple(layer.data.shape), tuple(float(s) for s in layer.scale)
    if channel == "auto":
        channel = "last" if layer.rgb else "none"
    if layer.rgb:
        if channel != "last":
            raise LayerChoiceError(f"image layer {layer.name!r} is RGB: its channels are the last axis; "
                                   "choose channel axis 'auto' or 'last'.")
        spatial_shape, spacing, layer_channel_axis = shape[:-1], scale, None
    elif channel == "none":
        spatial_shape, spacing, layer_channel_axis = shape, scale, None
    else:
        layer_channel_axis = 0 if channel == "first" else len(shape) - 1
        spatial_shape, spacing = (tuple(n for a, n in enumerate(values) if a != layer_channel_axis)
                                  for values in (shape, scale))
    if len(spacing) not in (2, 3):
        hint = ("pick a channel axis if one axis holds channels, or split the layer "
                "(right-click > Split Stack) and choose one 2D/3D layer")
        raise LayerChoiceError(f"image layer {layer.name!r} has shape {'x'.join(map(str, shape))}: "
                               f"{len(spacing)} spatial axes, but heatseg segments 2D or 3D images; {hint}.")
    return spatial_shape, spacing, layer_channel_axis


def image_data(layer, channel="auto"):
    """The image of ``layer`` in core layout, and its channel axis and spacing.

    Parameters
    ----------
    layer : napari.layers.Image
    channel : {'auto', 'none', 'first', 'last'}
        See :func:`spatial_layout`.

    Returns
    -------
    image : ndarray
        Spatial axes first, channels (if any) last.
    channel_axis : int or None
    spacing : tuple of float
        The layer's scale along the spatial axes.
    layer_channel_axis : int or None
        See :func:`spatial_layout`.
    """
    _, spacing, layer_channel_axis = spatial_layout(layer, channel)
    data = np.asarray(layer.data)
    if layer.rgb and data.shape[-1] == 4:
        data = data[..., :3]  # alpha is not image content
    elif layer_channel_axis is not None:
        data = np.moveaxis(data, layer_channel_axis, -1)
    channel_axis = None if len(spacing) == data.ndim else -1
    return data, channel_axis, spacing, layer_channel_axis


def labels_start(layer, spatial_shape, label_ids=None):
    """A copy of a Labels layer's data, keeping only ``label_ids`` (None: all)."""
    data = np.asarray(layer.data)
    if data.shape != tuple(spatial_shape):
        raise LayerChoiceError(
            f"start layer {layer.name!r} has shape {data.shape} but the image's spatial shape is "
            f"{tuple(spatial_shape)}; draw the start in a Labels layer of the image's shape "
            "(Layers > New Labels Layer with the image selected).")
    if label_ids:
        start = np.where(np.isin(data, list(label_ids)), data, 0)
    else:
        start = data.copy()
    if not start.any():
        which = f"labels {sorted(label_ids)}" if label_ids else "any label"
        raise LayerChoiceError(f"start layer {layer.name!r} has no voxel with {which}; paint a "
                               "rough start (a box, blob or scribble) on the object first.")
    return start


def parse_label_ids(text):
    """``'1, 3'`` -> ``{1, 3}``; empty or ``'all'`` -> None."""
    text = text.strip().lower()
    if text in ("", "all"):
        return None
    try:
        ids = {int(part) for part in text.replace(";", ",").split(",") if part.strip()}
    except ValueError:
        raise LayerChoiceError(f"label ids {text!r} are not whole numbers; write e.g. '1, 3' or 'all'.") from None
    if any(i <= 0 for i in ids):
        raise LayerChoiceError(f"label ids must be positive (0 is background), got {sorted(ids)}.")
    return ids
