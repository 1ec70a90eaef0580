"""No data loss in the viewer: undoable Apply, 'only unlabelled voxels', closing mid-run."""

import numpy as np
import pytest
from qtpy.QtCore import Qt

from gui_helpers import choose, disk_image, run_to_end, run_until_shown, seeded_disk

pytestmark = pytest.mark.gui


@pytest.fixture
def segmented(viewer_widget, qtbot):
    """A finished run on a noisy disk, and a target layer holding user labels."""
    viewer, widget = viewer_widget
    image, truth = disk_image()
    start = np.zeros(image.shape, np.uint8)
    start[40:56, 36:52] = 1
    existing = np.zeros(image.shape, np.uint16)
    existing[30:60, 20:40] = 5  # overlaps the disk's left part
    existing[0:10, 0:10] = 9
    target = viewer.add_labels(existing.copy(), name="annotations")
    choose(widget, viewer.add_image(image, name="disk"), viewer.add_labels(start, name="start"), max_iter=30)
    run_to_end(qtbot, widget)
    preview = viewer.layers["heatseg preview"].data.copy()
    assert preview.any()
    widget.reset_choices()
    widget._target.value = target
    return viewer, widget, target, existing, preview


def test_apply_only_unlabelled_never_changes_existing_labels(segmented):
    viewer, widget, target, existing, preview = segmented
    widget.apply_button.clicked()
    after = target.data
    labelled = existing > 0
    np.testing.assert_array_equal(after[labelled], existing[labelled])
    newly = ~labelled & (preview > 0)
    np.testing.assert_array_equal(after[newly], preview[newly])
    np.testing.assert_array_equal(after[~labelled & (preview == 0)], 0)
    assert newly.any() and (labelled & (preview > 0)).any()  # the test covers both cases
    record = target.metadata["heatseg"][-1]
    assert record["method"] == "heat" and record["only_unlabelled"] is True
    assert record["changed_voxels"] == int(newly.sum())


@pytest.mark.parametrize("mode", ["only unlabelled voxels", "overwrite"])
def test_apply_then_undo_restores_exactly(segmented, qtbot, mode):
    viewer, widget, target, existing, preview = segmented
    widget._mode.value = mode
    widget.apply_button.clicked()
    assert not np.array_equal(target.data, existing)
    if mode == "overwrite":
        np.testing.assert_array_equal(target.data[preview > 0], preview[preview > 0])
    assert viewer.layers.selection.active is target
    # Ctrl+Z on the canvas, as a user would press it
    canvas = viewer.window._qt_viewer.canvas.native
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(target.data, existing)
    target.redo()
    target.undo()
    np.testing.assert_array_equal(target.data, existing)


def test_apply_to_new_layer_and_twice(segmented):
    viewer, widget, target, existing, preview = segmented
    widget._target.value = "new layer"
    n_layers = len(viewer.layers)
    widget.apply_button.clicked()
    assert len(viewer.layers) == n_layers + 1
    new = viewer.layers[-1]
    np.testing.assert_array_equal(new.data, preview)
    assert tuple(new.scale) == tuple(viewer.layers["disk"].scale)
    widget.apply_button.clicked()  # the new layer is now the target; applying again changes nothing
    assert len(viewer.layers) == n_layers + 1
    np.testing.assert_array_equal(new.data, preview)
    np.testing.assert_array_equal(target.data, existing)


def test_apply_refuses_labels_that_do_not_fit(segmented, notifications):
    viewer, widget, target, existing, preview = segmented
    small = viewer.add_labels(np.zeros(preview.shape, np.uint8), name="uint8 target")
    viewer.layers["heatseg preview"].data = (preview > 0).astype(np.uint16) * 300
    widget.reset_choices()
    widget._target.value = small
    widget.apply_button.clicked()
    assert any("does not fit" in text for _, text in notifications)
    assert not small.data.any()


def test_apply_without_a_run_warns(viewer_widget, notifications):
    viewer, widget = viewer_widget
    viewer.add_labels(np.zeros((8, 8), np.uint8))
    widget.apply_button.clicked()
    assert any("nothing to apply" in text for _, text in notifications)


def test_closing_the_viewer_mid_run_loses_nothing(make_napari_viewer, qtbot, slow_evolve):
    """Every layer stays as it was or as last applied when the viewer closes during a run."""
    slow_evolve(0.2)
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-heatseg", "Heat segmentation")
    image, _, seed = seeded_disk()  # a small seed: a run of several (slowed) iterations
    box = np.zeros(image.shape, np.uint8)
    box[54:74, 54:74] = 1
    annotations = np.zeros(image.shape, np.uint16)
    annotations[:20, :20] = 3
    # copies: napari keeps the array it is given, so comparing with the originals is a real check
    layers = [viewer.add_image(image.copy(), name="disk"), viewer.add_labels(box.copy(), name="box"),
              viewer.add_labels(seed.copy(), name="seed"), viewer.add_labels(annotations.copy(), name="annotations")]
    choose(widget, layers[0], layers[1], max_iter=200)
    run_to_end(qtbot, widget)  # a first run, applied: the state to keep
    widget.reset_choices()
    widget._target.value = layers[3]
    widget.apply_button.clicked()
    applied = layers[3].data.copy()
    assert not np.array_equal(applied, annotations), widget.status.value
    choose(widget, start=layers[2])
    run_until_shown(qtbot, widget)  # a second run, interrupted by closing the viewer
    worker = widget.controller.worker
    assert worker is not None  # still running
    viewer.close()
    qtbot.waitUntil(lambda: not worker.is_running, timeout=5_000)
    for layer, data in zip(layers, [image, box, seed, applied]):
        np.testing.assert_array_equal(layer.data, data)


def test_cancel_while_paused_ends_the_worker(viewer_widget, qtbot, slow_evolve):
    slow_evolve(0.2)
    viewer, widget = viewer_widget
    image, _, start = seeded_disk()
    choose(widget, viewer.add_image(image), viewer.add_labels(start), max_iter=200)
    widget.step_button.clicked()  # Step from ready: starts a paused run, one iteration
    qtbot.waitUntil(lambda: widget.controller.n_updates >= 1, timeout=10_000)
    assert widget.controller.running and widget.run_state == "paused"
    widget.cancel_button.clicked()
    qtbot.waitUntil(lambda: not widget.controller.running, timeout=5_000)
    assert widget.run_state == "ready" and widget.status.value == "cancelled"
