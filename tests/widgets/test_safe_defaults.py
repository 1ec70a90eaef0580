"""Safe defaults of the dock widget on the bundled samples, in a real viewer."""

import numpy as np
import pytest

from napari_heatseg.samples import load_sample

pytestmark = pytest.mark.gui


@pytest.mark.parametrize("key", ["nuclei2d", "mri3d"])
def test_sample_opens_with_the_start_active_and_the_ground_truth_as_reference(viewer_widget, key):
    viewer, widget = viewer_widget
    viewer.open_sample("napari-heatseg", key)
    start, truth = viewer.layers[f"{key} start"], viewer.layers[f"{key} ground truth"]
    assert viewer.layers.selection.active == start  # painting goes into the marks
    assert not truth.visible
    widget.reset_choices()
    assert widget._reference.value == truth
    assert widget._start.value == start


def test_widget_opened_after_the_sample_chooses_the_ground_truth(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-heatseg", "nuclei2d")
    _, widget = viewer.window.add_plugin_dock_widget("napari-heatseg", "Heat segmentation")
    assert widget._reference.value == viewer.layers["nuclei2d ground truth"]
    assert widget._start.value == viewer.layers["nuclei2d start"]


def test_3d_sample_opens_on_its_marked_slice(viewer_widget):
    viewer, _ = viewer_widget
    viewer.open_sample("napari-heatseg", "mri3d")
    start = load_sample("mri3d")["start"]
    counts = np.count_nonzero(start.reshape(start.shape[0], -1), axis=1)
    assert counts[start.shape[0] // 2] < counts.max()  # napari's default, the middle slice, would be wrong
    assert viewer.dims.current_step[0] == int(np.argmax(counts))
