"""The heatseg dock widget: gather values, build :class:`SegmentInputs`, run, write layers."""

import threading

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, LineEdit, PushButton, RadioButtons, SpinBox
from napari.layers import Image, Labels, Shapes
from napari.utils.notifications import show_error, show_warning
from qtpy.QtCore import QTimer

import napari_heatseg as hs

from ._defaults import go_to_marked_slice, is_sample_reference, is_sample_start
from ._inputs import (WHERE, LayerChoiceError, SegmentInputs, image_data, labels_start,
                      parse_label_ids, spatial_layout)
from ._layers import add_preview, fresh_preview, show_state, spatial_transform
from ._layout import CancelWhenRemoved, StatusLine, scroll_sections
from ._loop import AnnotationLoop, key_for
from ._params import heat_parameter_values, heat_parameter_widgets
from ._results import NEW_LAYER, ONLY_UNLABELLED, OVERWRITE, ApplyAndCompare, metrics_widgets
from ._run import RunController, first_state_after
from ._shapes import shapes_start

__all__ = ["ADVANCED", "SegmentWidget"]

#: The heat method's parameters in the Advanced section (names of the core's HeatParameters).
ADVANCED = ("tau", "lam", "model", "edge", "max_num_iter", "tol", "reach", "min_std")


class SegmentWidget(ApplyAndCompare, Container):
    """Segment an image from a rough start (Labels or Shapes), live, with undoable Apply.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        Injected by napari.
    """

    def __init__(self, napari_viewer):
        super().__init__(labels=False)
        self._viewer = napari_viewer
        self._preview = None
        self._emptied = False  # the preview was emptied for a run and not drawn since
        self._watched_shapes = None  # the Shapes start whose drawing may set scope "inside"
        self._inputs = None
        self._image_transform = None
        self._closed = False
        self.controller = RunController(self._show, self._done)
        self.loop = AnnotationLoop(self)

        self._image = ComboBox(label="image", choices=self._choices(Image),
                               tooltip="The image to segment (2D or 3D; RGB and multichannel too).")
        self._channel = ComboBox(label="colour channels", choices=["auto", "none", "first", "last"], value="auto",
                                 tooltip="Which data axis holds the channels. auto: the colour axis of RGB "
                                         "layers; none: a grey image or volume.")
        self._start = ComboBox(label="start", choices=self._choices(Labels, Shapes, own=False),
                               tooltip="A Labels layer (painted marks) or a Shapes layer (rectangles, "
                                       "ellipses, polygons filled; paths drawn as scribbles).")
        self._label_ids = LineEdit(label="labels to use", value="all",
                                   tooltip="Labels of the start layer to use, e.g. '1, 3'; 'all' = every label.")
        self._shape_label = SpinBox(label="label of shapes", value=1, min=1, max=2**16 - 1,
                                    tooltip="Label value given to the shapes of a Shapes start.")
        self._method = ComboBox(label="method", choices=hs.methods(), value="heat",
                                tooltip="heat: threshold dynamics with the heat semigroup; others: classical "
                                        "baselines, for comparison.")
        self._scope = ComboBox(label="find", choices=["object", "inside", "all"], value="object",
                               tooltip="object: one object grown/shrunk from each mark; inside: the answer "
                                       "lies within the marked region (a box); all: everything that looks "
                                       "like the marks.")
        self._instances = CheckBox(text="one id per object", value=False,
                                   tooltip="Give every object found its own id, touching objects split "
                                           "(for nuclei, cells); most useful with 'find: all'.")
        self._where = ComboBox(label="run on", choices=list(WHERE), value="whole image/volume",
                               tooltip="current slice of a 3D stack, the whole image/volume, or slice by "
                                       "slice from the annotated slice(s), each started from its neighbour.")
        self._heat = heat_parameter_widgets(ADVANCED)

        self.run_button = PushButton(text="Run", tooltip=f"Start, or resume a paused run ({key_for('run')}).")
        self.pause_button = PushButton(text="Pause")
        self.step_button = PushButton(text="Step", tooltip="One more iteration (starts a paused run).")
        self.cancel_button = PushButton(text="Cancel", tooltip="Stop; the preview keeps the last state "
                                                               f"({key_for('cancel')}).")
        buttons = Container(widgets=[self.run_button, self.pause_button, self.step_button,
                                     self.cancel_button], layout="horizontal", labels=False)
        buttons.margins = (0, 0, 0, 0)
        self.status = StatusLine()

        self._target = ComboBox(label="apply to", choices=self._target_choices,
                                tooltip="Labels layer that receives the preview (undo with Ctrl+Z).")
        self._mode = RadioButtons(label="apply mode", choices=[ONLY_UNLABELLED, OVERWRITE], value=ONLY_UNLABELLED,
                                  tooltip="only unlabelled voxels never changes existing labels.")
        self.apply_button = PushButton(text="Apply")
        self._reference = ComboBox(label="reference", choices=self._choices(Labels, own=False),
                                   tooltip="Ground-truth Labels layer to compare the preview with.")
        self._foreground_only = CheckBox(text="foreground only", value=False,
                                         tooltip="Compare 'any label' against 'any label' (e.g. instance "
                                                 "ground truth against a one-label result).")
        self.compare_button = PushButton(text="Compare with reference")
        self.table, self.object_scores, metrics = metrics_widgets()

        marks, objects = self.loop.controls()
        self._sections = [
            Container(widgets=[self._image, self._channel, self._start, self._label_ids, self._shape_label]),
            Container(widgets=marks, labels=False),
            Container(widgets=[self._method, self._scope, self._instances, self._where, buttons]),
            Container(widgets=list(self._heat.values())),
            Container(widgets=[objects, self._target, self._mode, self.apply_button, self._reference,
                               self._foreground_only, self.compare_button, metrics]),
        ]
        titles = (("Input", True), ("Marks", True), ("Run", True), ("Advanced", False), ("Result", True))
        self.sections = scroll_sections(self, [(title, section, expanded) for (title, expanded), section
                                               in zip(titles, self._sections)], self.status)

        self.run_button.changed.connect(self.run)
        self.pause_button.changed.connect(self.pause)
        self.step_button.changed.connect(self.step)
        self.cancel_button.changed.connect(self.controller.cancel)
        self.apply_button.changed.connect(self.apply)
        self.compare_button.changed.connect(self.compare)
        self.loop.bind_keys()
        self._method.changed.connect(self._show_heat_params)
        self._start.changed.connect(self._scope_from_start)
        for picker in (self._image, self._channel):
            picker.changed.connect(self._prepare_preview_soon)
            picker.changed.connect(self.loop.image_changed)
        for field in (self._image, self._channel, self._start, self._label_ids, self._shape_label, self._method,
                      self._scope, self._instances, self._where, *self._heat.values()):
            field.changed.connect(self._inputs_changed)
        for event in (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed):
            event.connect(self.reset_choices)
        napari_viewer.layers.events.inserted.connect(self._sample_layer_added)
        self._reference.changed.connect(self._compare_options_for)
        for picker, is_sample_layer in ((self._start, is_sample_start), (self._reference, is_sample_reference)):
            for layer in filter(is_sample_layer, picker.choices):  # a sample opened before the widget
                picker.value = layer
        self.native.destroyed.connect(self._on_destroyed)
        self._removal_watch = CancelWhenRemoved(self.native, self.controller.cancel)
        self._set_state("ready")
        self._prepare_preview_soon()

    # ---- choices -----------------------------------------------------------------------------
    def reset_choices(self, *_):
        """Refresh every layer picker (napari calls this when layers change)."""
        for section in getattr(self, "_sections", ()):  # none yet while magicgui builds the container
            section.reset_choices()

    def _choices(self, *kinds, own=True):
        """Layers of the given kinds; ``own=False`` leaves out the layers the widget writes.

        Layers are compared with ``==``: napari hands plugins proxies of them, a new one
        per access, so ``is`` would never match.
        """
        def choices(_widget=None):
            return [(layer.name, layer) for layer in self._viewer.layers
                    if isinstance(layer, kinds) and (own or not self._own(layer))]

        return choices

    def _target_choices(self, _widget=None):
        layers = [(layer.name, layer) for layer in self._viewer.layers
                  if isinstance(layer, Labels) and not self._own(layer)]
        return [(NEW_LAYER, NEW_LAYER), *layers]

    def _own(self, layer):
        """The preview and the loop's marks layer: written by the widget, never offered as input."""
        return layer == self._preview or layer == self.loop.strokes

    def _sample_layer_added(self, event):
        """A sample's ground truth becomes the reference, its start the start (a 3D one shown
        on its marked slice)."""
        layer = event.value
        if is_sample_reference(layer):
            self._reference.value = layer
        elif is_sample_start(layer):
            self._start.value = layer
            go_to_marked_slice(self._viewer, layer)

    def _scope_from_start(self, layer):
        """Scope from the sample data's metadata, or ``inside`` once boxes are drawn as the start."""
        self._stop_watching_shapes()
        scope = getattr(layer, "metadata", {}).get("heatseg_scope")  # set by the sample data
        if scope in self._scope.choices:
            self._scope.value = scope
        elif isinstance(layer, Shapes):
            self._watched_shapes = layer
            layer.events.data.connect(self._scope_from_boxes)
            self._scope_from_boxes()

    def _scope_from_boxes(self, _event=None):
        """A Shapes start of only rectangles and ellipses is drawn around objects (as in
        GrabCut or SAM): switch the default scope ``object`` to ``inside``, once per layer."""
        layer = self._watched_shapes
        boxes = len(layer.data) and set(layer.shape_type) <= {"rectangle", "ellipse"}
        if boxes and self._scope.value == "object":
            self._scope.value = "inside"
            self.status.value = "find set to 'inside': the answer stays within the drawn boxes"
            self._stop_watching_shapes()

    def _stop_watching_shapes(self):
        if self._watched_shapes is not None:
            self._watched_shapes.events.data.disconnect(self._scope_from_boxes)
            self._watched_shapes = None

    def _show_heat_params(self, method):
        """The heat method's own fields (Advanced, one id per object) only with it; a baseline
        gets its child process ready (see :mod:`._process`)."""
        heat = method == "heat"
        for widget in (*self._heat.values(), self._instances):
            widget.visible = heat
        self.sections["Advanced"].setVisible(heat)
        if not heat:
            from ._process import warm_up

            warm_up()

    # ---- inputs ------------------------------------------------------------------------------
    def _params(self):
        if self._method.value != "heat":
            return {}
        return heat_parameter_values(self._heat)

    def gather_inputs(self, start=None):
        """Build :class:`SegmentInputs` from the widget; raise LayerChoiceError if impossible.

        ``start``: the start array to use instead of the start layer's (the annotation loop's).
        """
        image_layer, start_layer = self._image.value, self._start.value
        if image_layer is None:
            raise LayerChoiceError("no image layer: open an image (File > Open, or File > Open Sample).")
        if start is None and start_layer is None:
            raise LayerChoiceError("no start layer: add a Labels layer and paint a rough mark on the "
                                   "object, or a Shapes layer with a box around it.")
        image, channel_axis, spacing, layer_channel_axis = image_data(image_layer, self._channel.value)
        spatial_shape = image.shape[: len(spacing)]
        self._image_transform = spatial_transform(image_layer, layer_channel_axis)  # for the preview
        where = WHERE[self._where.value]
        if where == "propagate" and len(spatial_shape) != 3:
            raise LayerChoiceError("slice by slice needs a 3D image; choose 'whole image/volume' for a "
                                   "2D image.")
        instances = self._instances.value and self._method.value == "heat"
        if instances and where == "propagate":
            raise LayerChoiceError("'one id per object' works on the whole image/volume or the current slice; "
                                   "untick it or choose another 'run on'.")
        slice_index = None
        if where == "slice" and len(spatial_shape) == 3:
            point = np.delete(np.asarray(image_layer.world_to_data(self._viewer.dims.point)),
                              layer_channel_axis if layer_channel_axis is not None else [])
            slice_index = int(np.clip(round(float(point[0])), 0, spatial_shape[0] - 1))
        from_layer = start is None  # else the loop's: an object started from clicks has an empty start
        if not from_layer:
            if start.shape != tuple(spatial_shape):
                raise LayerChoiceError(f"the image's spatial shape is now {tuple(spatial_shape)}, the object's "
                                       f"{start.shape}; press Run to start again on this image.")
        elif isinstance(start_layer, Shapes):
            start = shapes_start(start_layer, image_layer, spatial_shape, world_point=self._viewer.dims.point,
                                 label=int(self._shape_label.value), layer_channel_axis=layer_channel_axis)
        else:
            start = labels_start(start_layer, spatial_shape, parse_label_ids(self._label_ids.value))
        if slice_index is not None and from_layer and not start[slice_index].any():
            raise LayerChoiceError(f"the start has no mark on slice {slice_index}; paint on the slice you "
                                   "see, or choose 'whole image/volume' or 'slice by slice'.")
        return SegmentInputs(image=image, start=start, method=self._method.value, scope=self._scope.value,
                             where=where, channel_axis=channel_axis, spacing=spacing,
                             slice_index=slice_index, params=self._params(), instances=instances)

    # ---- run ---------------------------------------------------------------------------------
    def run(self):
        """Start a run (or resume a paused one)."""
        if self.controller.running:
            self.controller.resume()
            self._set_state("running")
            return
        self.status.say("running…")
        if not all(isinstance(layer.data, np.ndarray) for layer in (self._image.value, self._start.value)
                   if layer is not None and not isinstance(layer, Shapes)):
            self.status.native.repaint()  # at once: a lazy (dask, zarr) layer is read now (a repaint
            # costs 20 ms on software OpenGL; otherwise the event loop paints it as the run starts)
        key = self.loop.key()
        try:
            inputs = self.loop.with_clicks(self.gather_inputs(), key)
        except LayerChoiceError as exc:
            self.report_error(exc)
            return
        self.start_run(inputs)
        self.loop.run_started(inputs, key)

    def start_run(self, inputs, start_name=None, clear=True):
        """Run ``inputs`` into the preview (emptied first if ``clear``)."""
        self._inputs = inputs
        self._preview = self._fresh_preview(inputs, start_name or self._start.value.name, clear)
        if not self._preview.visible:  # hidden by the last Apply
            self._preview.visible = True
        self.controller.start(inputs)
        self._set_state("running")
        self.status.say("running…")

    def report_error(self, message):
        """Say what went wrong in full, in the status line and as a napari notification."""
        self.status.say(str(message), error=True)
        show_error(f"heatseg: {message}")

    def _inputs_changed(self, *_):
        """A new choice makes the last run's message (and its warnings) stale."""
        if not self.controller.running:
            self.status.say("ready")

    def pause(self):
        self.controller.pause()
        self._set_state("paused")

    def step(self):
        if not self.controller.running:
            self.run()
            if not self.controller.running:
                return
        self.controller.step()
        self._set_state("paused")

    def _prepare_preview_soon(self, *_):
        QTimer.singleShot(0, self._prepare_preview)  # not inside napari's layer-inserted handlers

    def _prepare_preview(self):
        """Add the (empty) preview layer as soon as an image is picked, ahead of Run.

        Adding a layer costs napari 0.1-0.5 s on the main thread (it builds the vispy
        visuals), however small the data; a run then only fills the layer in, so the
        viewer stays fluid while it evolves. The core's compiled loops are loaded now too, on
        a thread of their own (about half a second, once per session). The layer the user
        was working on stays active.
        """
        if self._closed or self.controller.running or self._image.value is None:
            return
        if self._preview is not None and self._preview in self._viewer.layers:
            return  # Run reshapes it if the image changed
        image_layer, start_layer = self._image.value, self._start.value
        try:
            shape, _, layer_channel_axis = spatial_layout(image_layer, self._channel.value)
        except LayerChoiceError:
            return  # Run says what is wrong
        dtype = start_layer.data.dtype if isinstance(start_layer, Labels) else np.uint8
        self._preview = add_preview(self._viewer, shape, dtype, *spatial_transform(image_layer, layer_channel_axis))
        self.reset_choices()  # the pickers were refreshed while it was added, before it was known as ours
        threading.Thread(target=hs.warm_up, name="heatseg warm-up", daemon=True).start()

    def _fresh_preview(self, inputs, start_name, clear=True):
        added = self._preview is None or self._preview not in self._viewer.layers
        preview, self._emptied = fresh_preview(self._viewer, self._preview, inputs.start.shape,
                                               inputs.labels_dtype, *self._image_transform, clear)
        if self._emptied:  # drawn with the run's first state, or at the latest when one would be
            QTimer.singleShot(round(1000 * first_state_after(self.controller.min_interval)), self._show_emptied)
        preview.metadata["heatseg"] = dict(inputs.metadata(), image=self._image.value.name,
                                           start=start_name, outcome="running")
        if added:
            self._preview = preview
            self.reset_choices()  # see _prepare_preview
        return preview

    def _show_emptied(self):
        """Redraw the preview emptied at the start of a run, if no state has been drawn since."""
        if self._emptied and not self._closed and self._preview in self._viewer.layers:
            self._preview.refresh()
        self._emptied = False

    def _show(self, update):
        if self._closed:
            return
        preview = self._preview
        if preview not in self._viewer.layers:
            self.controller.cancel()
            show_warning("heatseg: the preview layer was removed, so the run was cancelled.")
            return
        # in place: replacing .data would make the viewer recompute its dims on every update
        if update.lock is not None:  # slice by slice: the volume the worker fills
            update.write_into(preview.data)
            preview.refresh()
        else:  # an emptied preview is drawn whole, with this state
            show_state(preview, update.labels, update.region, None if self._emptied else update.box)
        self._emptied = False
        self.status.say(update.progress(), details=update.details())

    def _done(self, outcome, message):
        if self._closed:
            return
        if self._preview is not None:
            self._preview.metadata["heatseg"]["outcome"] = outcome
        if outcome == "failed":  # the notification is cut short: the status line has it in full
            self.status.say(message, error=True)
        else:
            if outcome == "finished" and self._preview is not None and self._preview.metadata["heatseg"].get(
                    "instances"):
                n_objects = np.count_nonzero(np.unique(np.asarray(self._preview.data)))
                message = f"{message}; {n_objects} objects"
            warned = "".join(f"\nwarning: {text}" for text in self.controller.warnings)
            self.status.say(message + warned, details=self.status.native.toolTip())
        self._show_emptied()  # a run that showed no state (cancelled, failed)
        self._set_state("ready")
        self.loop.run_done(outcome)

    def _set_state(self, state):
        running = self.controller.running
        self.run_button.enabled = state != "running"
        self.pause_button.enabled = state == "running"
        self.step_button.enabled = True
        self.cancel_button.enabled = running
        self.apply_button.enabled = state != "running"
        self.run_state = state

    def _on_destroyed(self, *_):
        self._closed = True
        self.controller.cancel()
        self.loop.unbind_keys()
        self._stop_watching_shapes()  # the layer outlives the widget
