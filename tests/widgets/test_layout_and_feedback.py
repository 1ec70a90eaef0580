"""What the dock widget shows: sections in a scroll area, a status line that wraps, errors
and warnings in full, progress in plain words, and a Cancel that stops every method."""

import time

import numpy as np
import pytest
from qtpy.QtWidgets import QApplication, QScrollArea

from gui_helpers import choose, disk_image, run_to_end, run_until_shown
from napari_heatseg.core.ictm import HeatParameters
from napari_heatseg.widgets import _process
from napari_heatseg.widgets._segment_widget import ADVANCED

pytestmark = pytest.mark.gui


@pytest.fixture
def shown_viewer_widget(make_napari_viewer, qtbot):
    """The viewer shown at 1366x768 (a small laptop screen), with the heatseg dock widget."""
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1366, 768)
    _, widget = viewer.window.add_plugin_dock_widget("napari-heatseg", "Heat segmentation")
    qtbot.wait(100)
    return viewer, widget


def settle(qtbot):
    for _ in range(5):
        QApplication.processEvents()
        qtbot.wait(20)


def disk_layers(viewer, widget):
    image, _ = disk_image()
    start = np.zeros(image.shape, np.uint8)
    start[40:56, 36:52] = 1
    choose(widget, viewer.add_image(image, name="disk"), viewer.add_labels(start, name="start"), max_iter=30)
    return image, start


def test_sections_scroll_and_every_field_can_be_reached_at_1366x768(shown_viewer_widget, qtbot):
    _, widget = shown_viewer_widget
    assert list(widget.sections) == ["Input", "Marks", "Run", "Advanced", "Result"]
    assert not widget.sections["Advanced"].isExpanded()  # expert parameters out of the way
    assert all(widget.sections[title].isExpanded() for title in ("Input", "Marks", "Run", "Result"))
    assert tuple(widget._heat) == ADVANCED and set(ADVANCED) <= set(HeatParameters.describe())
    advanced = widget.sections["Advanced"]
    assert all(advanced.isAncestorOf(field.native) for field in widget._heat.values())
    advanced.expand(animate=False)
    scroll = widget.native.findChild(QScrollArea)
    settle(qtbot)
    assert scroll.verticalScrollBar().maximum() > 0  # taller than the dock at this screen size: it scrolls
    fields = [widget._image, widget._start, widget._method, widget._where, *widget._heat.values(), widget._mode,
              widget.apply_button, widget.compare_button, widget.table, widget.loop.accept_button]
    for field in fields:
        scroll.ensureWidgetVisible(field.native)
        settle(qtbot)
        assert not field.native.visibleRegion().isEmpty(), field.label  # scrolled to, it is seen


def test_a_long_status_wraps_and_never_widens_the_dock(shown_viewer_widget, qtbot):
    _, widget = shown_viewer_widget
    dock = widget.native.parent()
    settle(qtbot)
    width, line = dock.width(), widget.status.native.height()
    message = " ".join(["the start has no mark on the slice you see"] * 12)[:500]
    widget.status.value = message
    settle(qtbot)
    assert len(message) == 500 and widget.status.native.text() == message  # all of it, not clipped
    assert dock.width() == width
    assert widget.status.native.height() > 3 * line  # wrapped onto several lines


def test_an_error_is_shown_in_full_in_the_widget(viewer_widget, notifications):
    viewer, widget = viewer_widget
    choose(widget, viewer.add_image(np.zeros((32, 32), np.float32), name="img"))  # and no start layer
    widget.run_button.clicked()
    expected = ("no start layer: add a Labels layer and paint a rough mark on the object, or a Shapes layer "
                "with a box around it.")
    assert widget.status.value == expected and widget.status.error
    assert ("error", f"heatseg: {expected}") in notifications
    widget._scope.value = "all"  # a new choice: the error is stale
    assert widget.status.value == "ready" and not widget.status.error


def test_run_says_running_at_once_and_progress_in_changed_voxels(viewer_widget, qtbot, slow_evolve):
    slow_evolve(0.1)
    viewer, widget = viewer_widget
    disk_layers(viewer, widget)
    widget.controller.min_interval = 0.0
    widget.run_button.clicked()
    assert widget.status.value == "running…"  # before the first state comes back
    qtbot.waitUntil(lambda: widget.controller.n_updates >= 2, timeout=20_000)
    status = widget.status.value
    assert status.startswith("running: iteration ") and status.endswith(" voxels changed"), status
    assert "energy" not in status and widget.status.native.toolTip().startswith("energy ")
    qtbot.waitUntil(lambda: not widget.controller.running, timeout=60_000)
    assert widget.status.value.startswith("done: converged after "), widget.status.value


def test_a_core_warning_reaches_the_status_line(viewer_widget, qtbot):
    viewer, widget = viewer_widget
    start = np.zeros((48, 48), np.uint8)
    start[10:20, 10:20] = 1
    choose(widget, viewer.add_image(np.full((48, 48), 7.0, np.float32), name="flat"),
           viewer.add_labels(start, name="start"))
    run_to_end(qtbot, widget)
    assert widget.status.value.startswith("done"), widget.status.value
    assert "\nwarning: the image is constant" in widget.status.value
    assert "nan" not in widget.status.value
    widget._method.value = "threshold_otsu"  # the choice changed: the old warning goes
    assert widget.status.value == "ready"


def test_apply_hides_the_preview_and_a_new_run_shows_it(viewer_widget, qtbot):
    viewer, widget = viewer_widget
    disk_layers(viewer, widget)
    run_to_end(qtbot, widget)
    preview = viewer.layers["heatseg preview"]
    widget.apply_button.clicked()
    target = viewer.layers["disk heatseg"]
    assert target.data.any() and not preview.visible  # what is seen is what was applied
    assert "preview hidden" in widget.status.value
    run_to_end(qtbot, widget)
    assert preview.visible


def test_slice_by_slice_that_stops_early_says_where_the_object_is(viewer_widget, qtbot):
    """The object is on slices 0-3 only: the status must not say every slice was done."""
    rng = np.random.default_rng(4)  # result-bearing seed
    truth = np.zeros((8, 96, 96), bool)
    for z in range(4):
        truth[z] = disk_image(radius=20 - 2 * z)[1]
    volume = (truth + 0.1 * rng.standard_normal(truth.shape)).astype(np.float32)
    start = np.zeros(volume.shape, np.uint8)
    start[1] = truth[1]
    viewer, widget = viewer_widget
    choose(widget, viewer.add_image(volume, name="stack"), viewer.add_labels(start, name="s"),
           where="slice by slice")
    run_to_end(qtbot, widget)
    result = viewer.layers["heatseg preview"].data
    found = np.flatnonzero(result.reshape(8, -1).any(axis=1))
    assert found.size < 8  # the scene: propagation stops where the object ends
    # scope "object": the annotated slice is grown from its mark too, so all 8 are segmented
    assert widget.status.value.startswith(
        f"done: the object is on slices {found[0]}-{found[-1]} ({found.size} of 8 slices; 8 segmented)"), \
        widget.status.value
    # the core's stop record reaches the user: where propagation stopped and what to do
    assert "stopped" in widget.status.value and f"slice {found[-1] + 1}" in widget.status.value


@pytest.mark.parametrize("method", ["morph_chan_vese", "random_walker"])
def test_cancel_stops_a_baseline_within_half_a_second(viewer_widget, qtbot, monkeypatch, method):
    """A baseline cannot stop itself: its child process is killed.

    Sized to run long uncancelled: morph_chan_vese took 7.2 s on this 1024² noise image here
    (2 cores), the random walker longer; so a Cancel that waited for the library would
    take seconds, not 0.5 s.
    """
    children = []
    take = _process._take_child
    monkeypatch.setattr(_process, "_take_child", lambda: children.append(take()) or children[-1])
    _process.warm_up()
    rng = np.random.default_rng(0)  # result-bearing seed
    image = rng.random((1024, 1024)).astype(np.float32)
    start = np.zeros(image.shape, np.uint8)
    start[400:600, 400:600] = 1
    viewer, widget = viewer_widget
    choose(widget, viewer.add_image(image, name="noise"), viewer.add_labels(start, name="s"), method=method,
           scope="all")
    qtbot.wait(1500)  # the child imports the core meanwhile
    widget.run_button.clicked()
    qtbot.wait(1000)
    assert widget.controller.running and children and children[0].poll() is None  # still working
    cancelled = time.perf_counter()
    widget.cancel_button.clicked()
    qtbot.waitUntil(lambda: not widget.controller.running, timeout=20_000)
    assert time.perf_counter() - cancelled < 0.5
    assert children[0].poll() is not None  # the work itself stopped, not only the waiting
    assert widget.status.value == "cancelled" and not viewer.layers["heatseg preview"].data.any()


def test_cancel_stops_the_heat_method_within_half_a_second(viewer_widget, qtbot, slow_evolve):
    """The heat method stops between two states (each took at most 0.2 s at 1024² here);
    ``slow_evolve`` keeps it running long enough to cancel mid-way."""
    slow_evolve(0.3)
    viewer, widget = viewer_widget
    disk_layers(viewer, widget)
    run_until_shown(qtbot, widget, updates=2)
    assert widget.controller.running
    cancelled = time.perf_counter()
    widget.cancel_button.clicked()
    qtbot.waitUntil(lambda: not widget.controller.running, timeout=20_000)
    assert time.perf_counter() - cancelled < 0.5
    assert widget.status.value == "cancelled"


def test_a_run_stopped_by_the_iteration_limit_says_so(viewer_widget, qtbot, slow_evolve):
    slow_evolve(0.0)  # finest grid only: many iterations to go
    viewer, widget = viewer_widget
    disk_layers(viewer, widget)
    widget._heat["max_num_iter"].value = 2
    run_to_end(qtbot, widget)
    assert widget.status.value.startswith("done: stopped at the limit of 2 iterations, "), widget.status.value


def test_a_small_change_is_drawn_alone_and_a_large_one_whole(shown_viewer_widget, qtbot, monkeypatch):
    from napari_heatseg.widgets._layers import show_state

    viewer, _ = shown_viewer_widget
    layer = viewer.add_labels(np.zeros((4, 64, 64), np.uint8), name="shown")
    viewer.dims.set_point(0, 2)
    settle(qtbot)  # drawn once: napari's texture exists
    refreshed = []
    monkeypatch.setattr(layer, "refresh", lambda *a, **k: refreshed.append(True))
    state = np.zeros((64, 64), np.uint8)
    state[10:14, 20:30] = 1
    show_state(layer, state, (2,), (slice(10, 14), slice(20, 30)))
    np.testing.assert_array_equal(layer.data[2], state)
    assert not layer.data[[0, 1, 3]].any() and not refreshed  # only the box, recoloured by napari
    state = np.ones((64, 64), np.uint8)
    show_state(layer, state, (2,), (slice(0, 64), slice(0, 64)))
    np.testing.assert_array_equal(layer.data[2], state)
    assert refreshed == [True]


def test_edge_reads_auto_until_set_and_zero_turns_it_off(viewer_widget):
    """edge = 0 is a setting of its own (the plain Gaussian), so 'auto' is not 0 there."""
    _, widget = viewer_widget
    field = widget._heat["edge"]
    assert field.native.text() == "auto" and "edge" not in widget._params()  # chosen from the input
    field.value = 0.0
    assert widget._params()["edge"] == 0.0  # the user's 0 reaches the core
    field.value = 0.5
    assert widget._params()["edge"] == 0.5
    lam = widget._heat["lam"]  # where 0 is no value, 0 still means automatic
    assert lam.value == 0 and "lam" not in widget._params()


def test_a_short_run_is_drawn_once_and_a_rerun_starts_from_an_empty_preview(viewer_widget, qtbot, slow_evolve,
                                                                             monkeypatch):
    """A run shorter than the first state's delay (a quarter second; 5 s here, so that a slow
    machine gives the same) shows no intermediate state: its result is drawn once, and it is
    the core's. A second run empties the preview (drawn with its first state, or when it
    ends): cancelled before any state, it leaves it empty."""
    import napari_heatseg as hs
    from napari_heatseg.widgets import _run

    monkeypatch.setattr(_run, "FIRST_STATE_AFTER", 5.0)
    viewer, widget = viewer_widget
    image, start = disk_layers(viewer, widget)
    run_to_end(qtbot, widget)
    assert widget.controller.n_updates == 0  # no state shown before the result
    expected = hs.segment(image, start, spacing=(1.0, 1.0), **widget._params())
    np.testing.assert_array_equal(widget._preview.data, expected)
    slow_evolve(0.2)  # each state takes 0.2 s: the rerun is cancelled before its first
    widget.run_button.clicked()
    assert not widget._preview.data.any()  # emptied at once (drawn with the first state)
    widget.cancel_button.clicked()
    qtbot.waitUntil(lambda: not widget.controller.running, timeout=5_000)
    assert widget.status.value == "cancelled" and not widget._preview.data.any()
    assert not widget._emptied  # and the emptied preview was drawn
