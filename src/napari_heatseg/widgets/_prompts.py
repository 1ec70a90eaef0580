"""Prompts: a napari Points layer of positive and negative clicks, a Labels layer of brush
strokes, and the marks they make.

A positive click says "this is the object", a negative one "this is not"; each becomes a
small ball of voxels (a disk in 2D) around the click, fixed as a seed of the object's label
or as background (:func:`prompt_marks`). Strokes painted with value 1 (object) or 2 (not
object) are fixed voxel by voxel (:func:`with_strokes`). The core takes both as ``seeds``
and ``background`` (see :func:`napari_heatseg.segment`).
"""

import numpy as np

__all__ = ["BACKGROUND_STROKE", "CLICK_RADIUS", "MARKS_NAME", "NEGATIVE_COLOUR", "OBJECT_STROKE",
           "POSITIVE_COLOUR", "PROMPTS_NAME", "add_marks_layer", "add_prompts_layer", "prompt_key",
           "prompt_marks", "set_polarity", "with_strokes"]

PROMPTS_NAME, MARKS_NAME = "heatseg prompts", "heatseg marks"
OBJECT_STROKE, BACKGROUND_STROKE = 1, 2  # brush values of the marks layer
POSITIVE_COLOUR, NEGATIVE_COLOUR = "#00e060", "#ff2bd6"  # green / magenta: apart for red-green blindness too
#: Radius of the ball around a click, in voxels of the finest axis (physical units: times its spacing).
CLICK_RADIUS = 5.0
#: Held while clicking, it gives the other kind of click than the toggle says (napari's name).
NEGATIVE_MODIFIER = "Control"


def add_prompts_layer(viewer, ndim, scale, translate):
    """Add the prompts layer in ``add`` mode: a left click adds a point.

    Each point has a boolean feature ``positive`` (green: object, magenta: not object).
    Holding Ctrl while clicking adds the other kind than :func:`set_polarity` chose.
    """
    import pandas as pd

    layer = viewer.add_points(
        np.empty((0, ndim)), name=PROMPTS_NAME, scale=scale, translate=translate, size=8 * min(scale),
        features=pd.DataFrame({"positive": pd.Series([], dtype=bool)}), face_color="positive",
        face_color_cycle={True: POSITIVE_COLOUR, False: NEGATIVE_COLOUR}, border_color="white",
        border_width=0.1)
    layer.feature_defaults = {"positive": True}
    layer.metadata["heatseg_positive"] = True
    layer.mouse_drag_callbacks.insert(0, _polarity_from_modifier)
    layer.events.data.connect(lambda event, layer=layer: _restore_polarity(layer, event))
    layer.mode = "add"
    return layer


def add_marks_layer(viewer, shape, scale, translate):
    """Add the marks layer in paint mode: brush 1 (green) on the object, 2 (magenta) beside it."""
    layer = viewer.add_labels(np.zeros(shape, np.uint8), name=MARKS_NAME, scale=scale, translate=translate,
                              colormap={OBJECT_STROKE: POSITIVE_COLOUR, BACKGROUND_STROKE: NEGATIVE_COLOUR,
                                        None: "transparent"})
    layer.brush_size = 5
    layer.selected_label = OBJECT_STROKE
    layer.mode = "paint"
    return layer


def with_strokes(seeds, background, strokes, label):
    """Add the brush strokes to the clicks' ``seeds`` and ``background`` (strokes win).

    ``strokes``: the marks layer's data (0 none, 1 object, 2 not object); ``label``: the
    object's label. Returns ``(seeds, background)``, None where nothing is marked.
    """
    on, off = strokes == OBJECT_STROKE, strokes == BACKGROUND_STROKE
    if not (on.any() or off.any()):
        return seeds, background
    seeds = np.zeros(strokes.shape, np.int64) if seeds is None else seeds
    background = np.zeros(strokes.shape, bool) if background is None else background
    seeds[on], background[on] = label, False
    seeds[off], background[off] = 0, True
    return (seeds if seeds.any() else None), (background if background.any() else None)


def set_polarity(layer, positive):
    """Make the next clicks on ``layer`` positive (True) or negative (False)."""
    layer.metadata["heatseg_positive"] = bool(positive)
    layer.feature_defaults = {"positive": bool(positive)}


def _polarity_from_modifier(layer, event):
    """On press, before napari's own ``add`` (which adds the point on release)."""
    positive = layer.metadata["heatseg_positive"]
    if NEGATIVE_MODIFIER in event.modifiers:
        positive = not positive
    layer.feature_defaults = {"positive": positive}


def _restore_polarity(layer, event):
    if str(getattr(event, "action", "")) == "added":  # the modifier held for one click only
        layer.feature_defaults = {"positive": layer.metadata["heatseg_positive"]}


def prompt_key(layer):
    """The clicks as a hashable tuple, in the order they were added: ``((coords, positive), ...)``."""
    positive = layer.features["positive"].to_numpy(bool) if len(layer.data) else ()
    return tuple((tuple(np.round(point, 3).tolist()), bool(p)) for point, p in zip(layer.data, positive))


def prompt_marks(key, shape, spacing, label_at, radius=CLICK_RADIUS):
    """Seeds and background from clicks.

    Parameters
    ----------
    key : tuple of ((coords...), bool)
        Clicks in voxel coordinates of the image (see :func:`prompt_key`); True = positive.
    shape : tuple of int
        Spatial shape of the image.
    spacing : tuple of float
        Voxel size per axis; the ball around a click is round in physical units.
    label_at : callable
        ``label_at(index)`` gives the label a positive click at voxel ``index`` marks.
    radius : float
        Ball radius in voxels of the finest axis (``radius * min(spacing)`` physical).

    Returns
    -------
    seeds : ndarray of int or None
        0 = none, k = fixed to label k.
    background : ndarray of bool or None
        Voxels fixed to no label. A voxel in two balls takes the later click's side, so no
        voxel is both.
    """
    if not key:
        return None, None
    spacing = np.asarray(spacing, float)
    reach = radius * spacing.min()
    half = np.ceil(reach / spacing).astype(int)
    seeds = np.zeros(shape, np.int64)
    background = np.zeros(shape, bool)
    for coords, positive in key:
        centre = np.asarray(coords, float)
        if np.any(centre < -0.5) or np.any(centre > np.asarray(shape) - 0.5):
            continue  # a click beside the image marks nothing
        index = tuple(int(i) for i in np.clip(np.round(centre), 0, np.asarray(shape) - 1))
        box = tuple(slice(max(i - h, 0), min(i + h + 1, n)) for i, h, n in zip(index, half, shape))
        grid = np.ogrid[box]
        ball = sum(((g - c) * s) ** 2 for g, c, s in zip(grid, centre, spacing)) <= reach**2
        ball[tuple(i - b.start for i, b in zip(index, box))] = True  # a click off-centre still marks its voxel
        if positive:
            seeds[box][ball] = label_at(index)
            background[box][ball] = False
        else:
            seeds[box][ball] = 0
            background[box][ball] = True
    return (seeds if seeds.any() else None), (background if background.any() else None)
