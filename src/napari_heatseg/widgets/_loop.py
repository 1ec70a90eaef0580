"""The annotation loop of the dock widget: click to correct, accept, next object, keys.

Each click added to (or removed from, or moved in) the prompts layer re-runs the core from
the current result (``initial``) with the clicks as ``seeds`` and ``background``, off the GUI
thread through the widget's :class:`~._run.RunController`; a run still going is cancelled
first. Results are remembered by their clicks (:class:`~._objects.Checkpoints`), so taking
the last click away shows the result from before it at once. Accept writes the result as the
next free id of the target layer, and the next clicks start a new object from nothing.
"""

from dataclasses import replace

import numpy as np
from magicgui.widgets import CheckBox, Container, PushButton
from napari.utils.notifications import show_error, show_warning
from qtpy.QtCore import QTimer

from ._inputs import LayerChoiceError, spatial_layout
from ._layers import spatial_transform
from ._objects import AcceptedObjects, Checkpoints
from ._prompts import add_prompts_layer, prompt_key, prompt_marks, set_polarity

__all__ = ["KEYS", "AnnotationLoop"]

#: Viewer key -> (what it does, AnnotationLoop method). None of them is a napari default.
KEYS = {
    "Shift-R": ("run", "run"),
    "Shift-N": ("accept the object, next object", "accept"),
    "Shift-U": ("undo the last accept", "undo_accept"),
    "Shift-C": ("clear the clicks", "clear_marks"),
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
        self.checkpoints = Checkpoints()
        self.accepted = AcceptedObjects()
        self._origin = None  # start array of the object, None: the object starts from clicks
        self._scope = None
        self._pending = False  # clicks changed while a run was going on
        self._running_key = None  # the clicks of the run going on
        self._quiet = False

    def controls(self):
        """The loop's buttons, in two rows, connected."""
        self.click_button = PushButton(text="Correct by clicking", tooltip=(
            "Adds the 'heatseg prompts' layer: each left click on the object (green) or, with Ctrl or "
            "'negative clicks', beside it (magenta) re-runs from the preview; delete a point to take it back.\n"
            "Keys: " + "; ".join(f"{key} {what}" for key, (what, _) in KEYS.items())))
        self.negative_clicks = CheckBox(text="negative clicks", value=False, tooltip=(
            f"Clicks mark what is not the object ({key_for('toggle_polarity')}; Ctrl+click: the other kind)."))
        self.clear_button = PushButton(text="Clear clicks", tooltip=f"Removes every click ({key_for('clear_marks')}).")
        self.accept_button = PushButton(text="Accept, next object", tooltip=(
            "Writes the preview as the next free id into 'apply to' (never over other labels) and clears "
            f"the clicks for the next object ({key_for('accept')})."))
        self.undo_accept_button = PushButton(text="Undo last accept", tooltip=(
            f"Takes the last accepted object out of its layer ({key_for('undo_accept')})."))
        self.click_button.changed.connect(self.correct_by_clicking)
        self.negative_clicks.changed.connect(self.polarity_changed)
        self.clear_button.changed.connect(self.clear_marks)
        self.accept_button.changed.connect(self.accept)
        self.undo_accept_button.changed.connect(self.undo_accept)
        rows = ([self.click_button, self.negative_clicks, self.clear_button],
                [self.accept_button, self.undo_accept_button])
        return [Container(widgets=row, layout="horizontal", labels=False) for row in rows]

    # ---- the prompts layer ---------------------------------------------------------------------
    def correct_by_clicking(self):
        """Make (or pick) the prompts layer and activate it: the next left clicks add points."""
        image_layer = self._widget._image.value
        if image_layer is None:
            show_error("heatseg: no image layer: open an image before clicking on it.")
            return None
        try:
            shape, _, layer_channel_axis = spatial_layout(image_layer, self._widget._channel.value)
        except LayerChoiceError as exc:
            show_error(f"heatseg: {exc}")
            return None
        scale, translate = spatial_transform(image_layer, layer_channel_axis)
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

    def key(self):
        """The current clicks (see :func:`~._prompts.prompt_key`); () without a prompts layer."""
        if self.prompts is None or self.prompts not in self._viewer.layers:
            return ()
        return prompt_key(self.prompts)

    def with_clicks(self, inputs, key, result=None):
        """``inputs`` with the clicks ``key`` as seeds and background, evolving from ``result``.

        A positive click marks the label of ``result`` under it, or else the start's first
        label (1 for an object started from clicks).
        """
        if not key:
            return replace(inputs, initial=result)
        if inputs.where == "propagate":
            raise LayerChoiceError("clicks correct the whole image/volume or the current slice; choose "
                                   "one of them in 'where' (slice by slice takes no clicks).")
        labels = np.unique(inputs.start[inputs.start > 0])
        default = int(labels[0]) if labels.size else 1

        def label_at(index):
            found = 0 if result is None else int(result[index])
            return found or default

        seeds, background = prompt_marks(key, inputs.start.shape, inputs.spacing, label_at)
        return replace(inputs, seeds=seeds, background=background, initial=result)

    def _prompts_changed(self, event):
        if self._quiet or str(event.action) not in ("added", "removed", "changed"):
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
        if self._origin is None and not any(positive for _, positive in key):
            self._show(None, "click on the object first (a positive click starts it)")
            return
        start = self._origin
        try:
            if start is None:
                shape, _, _ = spatial_layout(widget._image.value, widget._channel.value)
                start = np.zeros(shape, widget._preview.data.dtype if widget._preview is not None else np.int32)
            inputs = widget.gather_inputs(start=start)
            inputs = self.with_clicks(inputs, key, result)
        except LayerChoiceError as exc:
            show_error(f"heatseg: {exc}")
            return
        inputs = replace(inputs, scope=self._scope or ("object" if inputs.scope == "inside" else inputs.scope))
        widget.start_run(inputs, start_name="clicks" if self._origin is None else None, clear=result is None)
        self._running_key = key
        n_positive = sum(positive for _, positive in key)
        widget.status.value = f"correcting: {n_positive} positive, {len(key) - n_positive} negative click(s)"

    def _show(self, labels, message):
        preview = self._widget._preview
        if preview is not None and preview in self._viewer.layers:
            if labels is None:
                preview.data[...] = 0
            else:
                preview.data[...] = labels
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
        target = widget.target_layer()
        ids = self.accepted.accept(target, np.asarray(preview.data), metadata=preview.metadata.get("heatseg"))
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

    def _next_object(self):
        self._origin = self._scope = None
        self.checkpoints.reset()
        self._pending = False
        if self.prompts is not None and self.prompts in self._viewer.layers:
            self._quiet = True
            try:
                self.prompts.data = np.empty((0, self.prompts.ndim))
            finally:
                self._quiet = False
            self._viewer.layers.selection.active = self.prompts
        self._show(None, "")

    # ---- keys ----------------------------------------------------------------------------------
    def run(self):
        self._widget.run()

    def cancel(self):
        self._pending = False
        self._widget.controller.cancel()

    def clear_marks(self):
        """Remove every click; the result goes back to the one before the first click."""
        if self.prompts is not None and self.prompts in self._viewer.layers and len(self.prompts.data):
            self.prompts.data = np.empty((0, self.prompts.ndim))

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
        for key, (_, name) in KEYS.items():
            self._viewer.bind_key(key, lambda _viewer, name=name: getattr(self, name)(), overwrite=True)

    def unbind_keys(self):
        for key in KEYS:
            self._viewer.bind_key(key, None)
