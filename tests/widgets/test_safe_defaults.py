"""Safe defaults of the dock widget on the bundled samples, in a real viewer."""

import re

import numpy as np
import pytest

import napari_heatseg as hs
from gui_helpers import choose, metrics_shown, run_to_end
from napari_heatseg.core.metrics import instance_scores
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


def test_a_run_straight_after_opening_keeps_the_start_active(viewer_widget, qtbot):
    viewer, widget = viewer_widget
    viewer.open_sample("napari-heatseg", "nuclei2d")
    assert "heatseg preview" not in viewer.layers  # Run adds it, before the widget prepared one
    run_to_end(qtbot, widget)
    assert viewer.layers["heatseg preview"].data.any()
    assert viewer.layers.selection.active == viewer.layers["nuclei2d start"]


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


def test_foreground_only_follows_the_reference(viewer_widget):
    viewer, widget = viewer_widget
    instances = np.zeros((40, 40), np.uint16)
    for i in range(8):  # 8 objects: an instance labelling
        instances[2 + 4 * i: 5 + 4 * i, 5:10] = i + 1
    classes = np.zeros((40, 40), np.uint8)
    classes[:10], classes[10:20] = 1, 2  # 2 classes
    many, few = viewer.add_labels(instances, name="instances"), viewer.add_labels(classes, name="classes")
    widget.reset_choices()
    widget._reference.value = many
    assert widget._foreground_only.value
    widget._reference.value = few
    assert not widget._foreground_only.value


def test_compare_shows_instance_scores_against_an_instance_reference(viewer_widget, qtbot):
    viewer, widget = viewer_widget
    viewer.open_sample("napari-heatseg", "nuclei2d")
    choose(widget, viewer.layers["nuclei2d"], viewer.layers["nuclei2d start"])
    run_to_end(qtbot, widget)
    truth = viewer.layers["nuclei2d ground truth"]
    widget.reset_choices()
    assert widget._reference.value == truth and widget._foreground_only.value  # both chosen for the user
    widget.compare_button.clicked()
    table = metrics_shown(widget)
    assert list(table) == ["label 1"] and list(table["label 1"])[:2] == ["Dice", "IoU"]  # foreground only
    assert not widget.object_scores.native.isHidden()
    shown = re.fullmatch(r"objects: (\d+) in the reference, (\d+) found; F1@0.5 ([\d.]+), mean AP ([\d.]+), "
                         r"count error ([+-]\d+)", widget.object_scores.value)
    assert shown, widget.object_scores.value
    scores = instance_scores(truth.data, viewer.layers["heatseg preview"].data)
    assert int(shown[1]) == scores["n_true"] == len(np.unique(truth.data)) - 1
    assert int(shown[2]) == scores["n_test"]
    assert float(shown[3]) == pytest.approx(scores["f1"], abs=1e-3)
    assert float(shown[4]) == pytest.approx(scores["mean_ap"], abs=1e-3)
    assert int(shown[5]) == scores["n_test"] - scores["n_true"]


def test_one_id_per_object_gives_the_core_instances_and_counts_them(viewer_widget, qtbot):
    viewer, widget = viewer_widget
    viewer.open_sample("napari-heatseg", "nuclei2d")
    image, start = viewer.layers["nuclei2d"], viewer.layers["nuclei2d start"]
    choose(widget, image, start, instances=True)
    assert widget._scope.value == "all"
    run_to_end(qtbot, widget, timeout=120_000)
    preview = viewer.layers["heatseg preview"].data
    expected = hs.segment(image.data, start.data, scope="all", spacing=tuple(image.scale), instances=True,
                          **widget._params())
    np.testing.assert_array_equal(preview, expected)
    n_objects = len(np.unique(expected)) - 1
    assert n_objects > 10  # many nuclei, not one blob
    assert widget.status.value.startswith("done:") and widget.status.value.endswith(f"; {n_objects} objects")
    assert viewer.layers["heatseg preview"].metadata["heatseg"]["instances"] is True


def test_one_id_per_object_is_only_offered_for_heat_and_refused_slice_by_slice(viewer_widget, notifications):
    viewer, widget = viewer_widget
    widget._method.value = "watershed"
    assert widget._instances.native.isHidden()  # hidden with the heat parameters
    widget._method.value = "heat"
    assert not widget._instances.native.isHidden()
    volume = np.zeros((4, 16, 16), np.float32)
    volume[:, 4:12, 4:12] = 1
    marks = np.zeros(volume.shape, np.uint8)
    marks[1, 6:10, 6:10] = 1
    choose(widget, viewer.add_image(volume, name="cube"), viewer.add_labels(marks, name="mark"),
           instances=True, where="slice by slice")
    widget.run_button.clicked()
    assert not widget.controller.running
    assert any("'one id per object' works on the whole image/volume" in text for _, text in notifications)


def test_preview_is_a_cyan_contour_and_stays_so_after_a_run(viewer_widget, qtbot):
    viewer, widget = viewer_widget
    viewer.open_sample("napari-heatseg", "rgb_photo")  # a red cup: the old dark orange vanished on it
    choose(widget, viewer.layers["rgb_photo"], viewer.layers["rgb_photo start"])
    run_to_end(qtbot, widget, timeout=120_000)
    preview = viewer.layers["heatseg preview"]
    assert preview.contour > 0
    ids = np.unique(preview.data)
    colours = preview.colormap.map(ids)
    np.testing.assert_allclose(colours[ids == 0, 3], 0)  # background transparent
    red, green, blue, alpha = colours[ids > 0].T
    assert len(red) and np.all(alpha == 1) and np.all(blue > 0.9) and np.all(green > 0.8) and np.all(red < 0.1)
