"""The annotation loop of the dock widget: click to correct, accept, next object, keys.

Each click added to (or removed from, or moved in) the prompts layer, and each brush stroke
on the marks layer, re-runs the core from the current result (``initial``) with the marks as
``seeds`` and ``background``, off the GUI thread through the widget's
:class:`~._run.RunController`; a run still going is cancelled first. Results are remembered
by their marks (:class:`~._objects.Checkpoints`), so taking the last click away shows the
result from before it at once. Accept writes the result as the next free id of the target
layer, and the next clicks start a new object from nothing.
"""

import hashlib
from dataclasses import replace

import numpy as np
from magicgui.widgets import CheckBox, Container, PushButton
from napari.utils.notifications import show_warning
from qtpy.QtCore import QTimer

from ._inputs import LayerChoiceError, spatial_layout
from ._layers import spatial_transform
from ._objects import AcceptedObjects, Checkpoints
from ._prompts import (
    OBJECT_STROKE,
    add_marks_layer,
    add_prompts_layer,
    prompt_key,
    prompt_marks,
    set_polarity,
    with_strokes,
)

__all__ = ["KEYS", "AnnotationLoop"]

#: Viewer key -> (what it does, AnnotationLoop method). None of them is a napari default.
KEYS = {
    "Shift-R": ("run", "run"),
    "Shift-N": ("accept the object, next object", "accept"),
    "Shift-U": ("undo the last accept", "undo_accept"),
    "Shift-C": ("clear the clicks and strokes", "clear_marks"),
    "Shift-T": ("toggle positive / negative clicks", "toggle_polarity"),
    "Shift-H": ("show / hide the preview", "toggle_preview"),
    "Shift-X": ("cancel the run", "cancel"),
}


def key_for(method):
    """The key bound to ``AnnotationLoop.method``, for tooltips."""
    return next(key for key, (_, name) in KEYS.items() if name == method)


class AnnotationLoop:
    """Clicks, corrections and objects for one :class:`~._segment_widget.SegmentWidget`.

    The object being corrected has an origin: the start array of the last Run (its scope
    still says where the answer may lie), or nothing after an Accept, when the first
    positive click starts the next object (scope ``object`` unless ``all`` is chosen).
    """

    def __init__(self, widget):
        self._widget = widget
        self._viewer = widget._viewer
        self.prompts = None
        self.strokes = None  # the marks layer
        self._strokes_digest = None  # of its data, updated after each stroke
        self.checkpoints = Checkpoints()
        self.accepted = AcceptedObjects()
        self._origin = None  # start array of the object, None: the object starts from clicks
        self._scope = None
        self._pending = False  # clicks changed while a run was going on
        self._running_key = None  # the clicks of the run going on
        self._quiet = False
        self._bound = {}  # key -> the function bound on the viewer

    def controls(self):
        """The loop's buttons, connected: the marks' rows, and the objects' row (for Result)."""
        self.click_button = PushButton(text="Correct by clicking", tooltip=(
            "Adds the 'heatseg prompts' layer: each left click on the object (green) or, with Ctrl or "
            "'negative clicks', beside it (magenta) re-runs from the preview; delete a point to take it back.\n"
            "Keys: " + "; ".join(f"{key} {what}" for key, (what, _) in KEYS.items())))
        self.negative_clicks = CheckBox(text="negative clicks", value=False, tooltip=(
            f"Clicks mark what is not the object ({key_for('toggle_polarity')}; Ctrl+click: the other kind)."))
        self.brush_button = PushButton(text="Brush marks", tooltip=(
            "Adds the 'heatseg marks' layer: paint 1 on the object, 2 on what is not; each stroke re-runs "
            "from the preview (erase a wrong stroke with the eraser; Ctrl+Z there waits for the next mark)."))
        self.clear_button = PushButton(text="Clear",
                                       tooltip=f"Removes every click and stroke ({key_for('clear_marks')}).")
        self.accept_button = PushButton(text="Accept, next object", tooltip=(
            "Writes the preview as the next free id into 'apply to' (never over other labels) and clears "
            f"the clicks for the next object ({key_for('accept')})."))
        self.undo_accept_button = PushButton(text="Undo last accept", tooltip=(
            f"Takes the last accepted object out of its layer ({key_for('undo_accept')})."))
        self.click_button.changed.connect(self.correct_by_clicking)
        self.negative_clicks.changed.connect(self.polarity_changed)
        self.brush_button.changed.connect(self.brush_marks)
        self.clear_button.changed.connect(self.clear_marks)
        self.accept_button.changed.connect(self.accept)
        self.undo_accept_button.changed.connect(self.undo_accept)
        rows = [Container(widgets=row, layout="horizontal", labels=False)
                for row in ([self.click_button, self.negative_clicks], [self.brush_button, self.clear_button],
                            [self.accept_button, self.undo_accept_button])]
        for row in rows:
            row.margins = (0, 0, 0, 0)
        return rows[:2], rows[2]

    # ---- the prompts layer ---------------------------------------------------------------------
    def _image_layout(self):
        """``(spatial shape, scale, translate)`` of the image, or None (the user was told why)."""
        image_layer = self._widget._image.value
        if image_layer is None:
            self._widget.report_error("no image layer: open an image before marking it.")
            return None
        try:
            shape, _, layer_channel_axis = spatial_layout(image_layer, self._widget._channel.value)
        except LayerChoiceError as exc:
            self._widget.report_error(exc)
            return None
        return (tuple(shape), *spatial_transform(image_layer, layer_channel_axis))

    def correct_by_clicking(self):
        """Make (or pick) the prompts layer and activate it: the next left clicks add points."""
        if (layout := self._image_layout()) is None:
            return None
        shape, scale, translate = layout
        layer = self.prompts
        if layer is None or layer not in self._viewer.layers or layer.ndim != len(shape):
            layer = add_prompts_layer(self._viewer, len(shape), scale, translate)
            layer.events.data.connect(self._prompts_changed)
            self.prompts = layer
        set_polarity(layer, not self.negative_clicks.value)
        layer.mode = "add"
        self._viewer.layers.selection.active = layer
        self._widget.status.value = ("click on the object to correct it (Ctrl+click or "
                                     f"{key_for('toggle_polarity')}: not the object)")
        return layer

    def brush_marks(self):
        """Make (or pick) the marks layer and activate it, in paint mode."""
        if (layout := self._image_layout()) is None:
            return None
        shape, scale, translate = layout
        layer = self.strokes
        if layer is None or layer not in self._viewer.layers or layer.data.shape != shape:
            layer = add_marks_layer(self._viewer, shape, scale, translate)
            layer.events.paint.connect(self._strokes_changed)
            self.strokes, self._strokes_digest = layer, None
        layer.mode = "paint"
        self._viewer.layers.selection.active = layer
        self._widget.status.value = "paint 1 on the object, 2 on what is not; each stroke corrects the preview"
        return layer

    def _stroke_data(self):
        if self.strokes is None or self.strokes not in self._viewer.layers:
            return None
        return np.asarray(self.strokes.data)

    def _strokes_changed(self, _event=None):
        data = self._stroke_data()
        digest = None
        if data is not None and data.any():
            digest = hashlib.blake2b(np.ascontiguousarray(data).tobytes(), digest_size=8).hexdigest()
        self._strokes_digest = digest
        self._changed()

    def key(self):
        """The current marks: the clicks (see :func:`~._prompts.prompt_key`), then the strokes'
        digest if any are painted; () without marks."""
        clicks = () if self.prompts is None or self.prompts not in self._viewer.layers else prompt_key(self.prompts)
        painted = self._strokes_digest is not None and self._stroke_data() is not None
        strokes = (("strokes", self._strokes_digest),) if painted else ()
        return clicks + strokes

    def with_clicks(self, inputs, key, result=None):
        """``inputs`` with the clicks ``key`` as seeds and background, evolving from ``result``.

        A positive click marks the label of ``result`` under it, or else the start's first
        label (1 for an object started from clicks).
        """
        if not key:
            return replace(inputs, initial=result)
        if inputs.where == "propagate":
            raise LayerChoiceError("clicks and strokes correct the whole image/volume or the current slice; choose "
                                   "one of them in 'run on' (slice by slice takes no clicks).")
        labels = np.unique(inputs.start[inputs.start > 0])
        default = int(labels[0]) if labels.size else 1

        def label_at(index):
            found = 0 if result is None else int(result[index])
            return found or default

        clicks = tuple(item for item in key if item[0] != "strokes")
        seeds, background = prompt_marks(clicks, inputs.start.shape, inputs.spacing, label_at)
        if len(clicks) < len(key):
            seeds, background = with_strokes(seeds, background, self._stroke_data(), default)
        return replace(inputs, seeds=seeds, background=background, initial=result)

    def _prompts_changed(self, event):
        if not self._quiet and str(event.action) in ("added", "removed", "changed"):
            self._changed()

    def _changed(self):
        if self._quiet:
            return
        self._pending = True
        QTimer.singleShot(0, self._kick)

    def _kick(self):
        if not self._pending or self._widget._closed:
            return
        if self._widget.controller.running:
            self._widget.controller.cancel()  # run_done kicks again
            return
        self._pending = False
        self._correct()

    # ---- runs ----------------------------------------------------------------------------------
    def run_started(self, inputs, key):
        """A Run from the start layer: its start is the origin of the object being corrected."""
        self._origin, self._scope = inputs.start, inputs.scope
        self.checkpoints.reset()
        self._running_key = key

    def run_done(self, outcome):
        preview = self._widget._preview
        if outcome == "finished" and self._running_key is not None and preview is not None:
            self.checkpoints.add(self._running_key, np.asarray(preview.data))
        self._running_key = None
        if self._pending:  # the clicks changed meanwhile (the run was cancelled for them): run those
            QTimer.singleShot(0, self._kick)

    def _correct(self):
        widget, key = self._widget, self.key()
        done_key, result = self.checkpoints.best(key)
        if done_key == key:  # e.g. the last click was taken away: its result is known
            self._show(result, f"back to the result of {len(key)} click(s)")
            return
        strokes = self._stroke_data()
        if self._origin is None and not any(positive is True for _, positive in key) and not (
                strokes is not None and (strokes == OBJECT_STROKE).any()):
            self._show(None, "click on the object first (a positive click or stroke starts it)")
            return
        start = self._origin
        try:
            if start is None:
                shape, _, _ = spatial_layout(widget._image.value, widget._channel.value)
                start = np.zeros(shape, widget._preview.data.dtype if widget._preview is not None else np.int32)
            inputs = widget.gather_inputs(start=start)
            inputs = self.with_clicks(inputs, key, result)
        except LayerChoiceError as exc:
            self._widget.report_error(exc)
            return
        inputs = replace(inputs, scope=self._scope or ("object" if inputs.scope == "inside" else inputs.scope))
        widget.start_run(inputs, start_name="clicks" if self._origin is None else None, clear=result is None)
        self._running_key = key
        n_positive = sum(positive is True for _, positive in key)
        n_negative = sum(positive is False for _, positive in key)
        painted = ", and strokes" if key and key[-1][0] == "strokes" else ""
        widget.status.value = f"correcting: {n_positive} positive, {n_negative} negative click(s){painted}"

    def _show(self, labels, message):
        preview = self._widget._preview
        if preview is not None and preview in self._viewer.layers:
            preview.data[...] = 0 if labels is None else labels
            preview.refresh()
        self._widget.status.value = message

    # ---- objects -------------------------------------------------------------------------------
    def accept(self):
        """Write the preview as the next free id(s) into the target layer; start the next object."""
        widget, preview = self._widget, self._widget._preview
        if widget.controller.running:
            show_warning(f"heatseg: a run is going on; wait for it or cancel it ({key_for('cancel')}).")
            return None
        if preview is None or preview not in self._viewer.layers or not np.any(preview.data):
            show_warning("heatseg: nothing to accept; run a segmentation or click on an object first.")
            return None
        target = widget.target_layer(dtype=np.int32)  # a new layer holds many objects
        try:
            ids = self.accepted.accept(target, np.asarray(preview.data), metadata=preview.metadata.get("heatseg"))
        except LayerChoiceError as exc:
            self._widget.report_error(exc)
            return None
        if not ids:
            show_warning(f"heatseg: every voxel of the object is labelled already in {target.name!r}; "
                         "nothing was written.")
            return None
        self._next_object()
        widget.status.value = (f"accepted object {', '.join(map(str, ids))} into {target.name!r}; click on the "
                               f"next object ({key_for('undo_accept')} takes it out again)")
        return ids

    def undo_accept(self):
        """Take the last accepted object out of its layer again."""
        undone = self.accepted.undo_last()
        if undone is None:
            show_warning("heatseg: no accepted object to undo.")
            return
        target, ids = undone
        self._widget.status.value = f"took object {', '.join(map(str, ids))} out of {target.name!r}"

    def image_changed(self, _image=None):
        """Clicks, strokes and results belong to one image: another one starts from nothing
        (the next Brush marks makes a marks layer of its shape)."""
        self._start_afresh()
        self.strokes = None

    def _start_afresh(self):
        """No object, no results, no marks; quietly (nothing re-runs)."""
        self._origin = self._scope = None
        self.checkpoints.reset()
        self._pending = False
        self._quiet = True
        try:
            self._remove_marks()
        finally:
            self._quiet = False

    def _next_object(self):
        self._start_afresh()
        if self.prompts is not None and self.prompts in self._viewer.layers:
            self._viewer.layers.selection.active = self.prompts
        self._show(None, "")

    def _remove_marks(self):
        if self.prompts is not None and self.prompts in self._viewer.layers and len(self.prompts.data):
            self.prompts.data = np.empty((0, self.prompts.ndim))
        strokes = self._stroke_data()
        if strokes is not None and strokes.any():
            self.strokes.data[...] = 0
            self.strokes.refresh()
            self._strokes_changed()

    # ---- keys ----------------------------------------------------------------------------------
    def run(self):
        self._widget.run()

    def cancel(self):
        self._pending = False
        self._widget.controller.cancel()

    def clear_marks(self):
        """Remove every click and stroke; the result goes back to the one before the first."""
        self._remove_marks()

    def toggle_polarity(self):
        self.negative_clicks.value = not self.negative_clicks.value

    def polarity_changed(self, negative):
        if self.prompts is not None:
            set_polarity(self.prompts, not negative)

    def toggle_preview(self):
        preview = self._widget._preview
        if preview is not None and preview in self._viewer.layers:
            preview.visible = not preview.visible

    def bind_keys(self):
        """Bind :data:`KEYS` on the viewer (napari's own keys are left alone)."""
        self._bound = {}
        for key, (_, name) in KEYS.items():
            self._bound[key] = lambda _viewer, name=name: getattr(self, name)()
            self._viewer.bind_key(key, self._bound[key], overwrite=True)

    def unbind_keys(self):
        """Unbind the keys this loop still holds (another heatseg widget may have taken them)."""
        from app_model.types import KeyBinding

        for key, func in self._bound.items():
            if self._viewer.keymap.get(KeyBinding.from_str(key)) is func:
                self._viewer.bind_key(key, None)
        self._bound = {}
