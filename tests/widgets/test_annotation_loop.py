"""The annotation loop in a real viewer: clicks on the canvas correct the preview, accept
writes objects 1, 2, 3, undo takes the last one out, and the loop's keys are bound."""

import numpy as np
import pytest
from gui_helpers import choose, run_to_end
from qtpy.QtCore import QPoint, Qt
from qtpy.QtTest import QTest

pytestmark = pytest.mark.gui

SHIFT, CTRL = Qt.KeyboardModifier.ShiftModifier, Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def shown(make_napari_viewer):
    """A shown viewer (mouse clicks need a canvas with a size) and the heatseg widget."""
    viewer = make_napari_viewer(show=True)
    _, widget = viewer.window.add_plugin_dock_widget("napari-heatseg", "Heat segmentation")
    return viewer, widget


def three_blobs(shape=(96, 128), noise=0.2, seed=0):
    """A large disk (the object) and two look-alike small ones (A above, B below) to its right."""
    rng = np.random.default_rng(seed)  # result-bearing seed
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    big = (yy - 48) ** 2 + (xx - 38) ** 2 < 22**2
    a = (yy - 24) ** 2 + (xx - 100) ** 2 < 10**2
    b = (yy - 72) ** 2 + (xx - 100) ** 2 < 10**2
    image = ((big | a | b) + rng.normal(0, noise, shape)).astype(np.float32)
    return image, big, a, b


def open_scene(qtbot, viewer, widget, scope):
    """Add the scene and a mark inside the large disk, and Run."""
    image, big, a, b = three_blobs()
    start = np.zeros(image.shape, np.uint8)
    start[44:52, 34:42] = 1
    choose(widget, viewer.add_image(image, name="blobs"), viewer.add_labels(start, name="mark"), scope=scope)
    run_to_end(qtbot, widget)
    return big, a, b


def preview(viewer):
    return np.asarray(viewer.layers["heatseg preview"].data)


def click(qtbot, viewer, point, modifier=Qt.KeyboardModifier.NoModifier):
    """A left click on the canvas at the image's pixel ``point`` (row, column), as a user clicks."""
    canvas = viewer.window._qt_viewer.canvas.native
    centre, zoom = np.asarray(viewer.scene.camera.center[-2:]), viewer.scene.camera.zoom
    row, col = (np.asarray(point, float) - centre) * zoom + np.array([canvas.height(), canvas.width()]) / 2
    QTest.mouseClick(canvas, Qt.MouseButton.LeftButton, modifier, QPoint(round(col), round(row)))


def press(qtbot, viewer, key, modifier=SHIFT):
    canvas = viewer.window._qt_viewer.canvas.native
    canvas.setFocus()
    qtbot.keyClick(canvas, key, modifier)


def settled(qtbot, widget, timeout=20_000):
    """Wait until the preview shows the result of the current clicks."""
    loop = widget.loop

    def done():
        key = loop.key()
        return not widget.controller.running and not loop._pending and loop.checkpoints.best(key)[0] == key

    qtbot.waitUntil(done, timeout=timeout)


def start_clicking(qtbot, viewer, widget):
    widget.loop.click_button.clicked()
    prompts = viewer.layers["heatseg prompts"]
    assert viewer.layers.selection.active == prompts and prompts.mode == "add"
    qtbot.wait(50)
    return prompts


def test_clicks_correct_the_preview_and_keep_earlier_clicks(shown, qtbot):
    viewer, widget = shown
    big, a, b = open_scene(qtbot, viewer, widget, scope="object")
    first = preview(viewer).copy()
    assert first[big].mean() > 0.95 and not first[a | b].any()  # one object: the look-alikes are left out
    prompts = start_clicking(qtbot, viewer, widget)

    click(qtbot, viewer, (24, 100))  # "A is object too"
    settled(qtbot, widget)
    with_a = preview(viewer).copy()
    assert len(prompts.data) == 1 and prompts.features["positive"].tolist() == [True]
    np.testing.assert_allclose(prompts.data[0], (24, 100), atol=0.6)
    assert with_a[a].mean() > 0.95 and with_a[big].mean() > 0.95 and not with_a[b].any()
    assert widget._inputs.initial is not None  # corrected from the preview, not from scratch

    click(qtbot, viewer, (72, 100))  # and B
    settled(qtbot, widget)
    with_b = preview(viewer)
    assert with_b[b].mean() > 0.95
    assert with_b[a].mean() > 0.95 and with_b[big].mean() > 0.95  # the earlier click still holds

    prompts.selected_data = {1}  # the click on B was wrong: delete it
    prompts.remove_selected()
    settled(qtbot, widget)
    np.testing.assert_array_equal(preview(viewer), with_a)
    np.testing.assert_array_equal(viewer.layers["mark"].data[44:52, 34:42], 1)  # the start is untouched


def test_a_negative_click_removes_a_leaked_region(shown, qtbot):
    viewer, widget = shown
    big, a, b = open_scene(qtbot, viewer, widget, scope="all")
    leaked = preview(viewer).copy()
    assert leaked[a].mean() > 0.9 and leaked[b].mean() > 0.9  # 'all' takes the look-alikes too
    prompts = start_clicking(qtbot, viewer, widget)

    click(qtbot, viewer, (72, 100), CTRL)  # Ctrl+click: "B is not object"
    settled(qtbot, widget)
    assert prompts.features["positive"].tolist() == [False]
    assert preview(viewer)[b].mean() < 0.2
    assert preview(viewer)[big].mean() > 0.95 and preview(viewer)[a].mean() > 0.9

    press(qtbot, viewer, Qt.Key.Key_T)  # the toggle: plain clicks are negative now
    assert widget.loop.negative_clicks.value
    click(qtbot, viewer, (24, 100))
    settled(qtbot, widget)
    assert prompts.features["positive"].tolist() == [False, False]
    assert preview(viewer)[a].mean() < 0.2 and preview(viewer)[b].mean() < 0.2  # B stays out
    assert preview(viewer)[big].mean() > 0.95
    positive_colour = prompts.face_color[0]
    press(qtbot, viewer, Qt.Key.Key_T)
    click(qtbot, viewer, (48, 38))  # positive, on the object: nothing to correct
    settled(qtbot, widget)
    assert prompts.features["positive"].tolist() == [False, False, True]
    assert not np.allclose(prompts.face_color[2], positive_colour)  # two kinds, two colours


def test_accept_next_gives_ids_1_2_3_and_undo_removes_only_the_last(shown, qtbot):
    viewer, widget = shown
    target = viewer.add_labels(np.zeros((96, 128), np.uint16), name="objects")
    big, a, b = open_scene(qtbot, viewer, widget, scope="object")
    widget.reset_choices()
    widget._target.value = target
    start_clicking(qtbot, viewer, widget)

    press(qtbot, viewer, Qt.Key.Key_N)  # accept the Run's object: id 1
    assert not preview(viewer).any() and not len(viewer.layers["heatseg prompts"].data)
    for point in ((24, 100), (72, 100)):  # the next objects start from one click each
        click(qtbot, viewer, point)
        settled(qtbot, widget)
        assert preview(viewer).any()
        press(qtbot, viewer, Qt.Key.Key_N)
    objects = np.asarray(target.data)
    assert sorted(np.unique(objects)) == [0, 1, 2, 3]
    for region, object_id in ((big, 1), (a, 2), (b, 3)):
        assert (objects[region] == object_id).mean() > 0.95, object_id
    assert len(widget.loop.accepted) == 3

    press(qtbot, viewer, Qt.Key.Key_U)  # undo the last accept
    after = np.asarray(target.data)
    assert not (after == 3).any()
    np.testing.assert_array_equal(after[objects != 3], objects[objects != 3])  # 1 and 2 untouched
    target.undo()  # the undo is one step of the layer's history too
    np.testing.assert_array_equal(target.data, objects)


def test_keys_are_bound_on_the_viewer_and_named_in_tooltips(shown, qtbot):
    from app_model.types import KeyBinding
    from napari.utils.shortcuts import default_shortcuts

    from napari_heatseg.widgets._loop import KEYS

    viewer, widget = shown
    napari_keys = {str(binding) for bindings in default_shortcuts.values() for binding in bindings}
    for key in KEYS:
        assert KeyBinding.from_str(key) in viewer.keymap, key
        assert str(KeyBinding.from_str(key)) not in napari_keys, key
    tooltips = " ".join(w.tooltip or "" for w in (widget.run_button, widget.cancel_button, widget.loop.accept_button,
                                                  widget.loop.undo_accept_button, widget.loop.clear_button,
                                                  widget.loop.negative_clicks, widget.loop.click_button))
    for key in KEYS:
        assert key in tooltips, key
    open_scene(qtbot, viewer, widget, scope="object")
    layer = viewer.layers["heatseg preview"]
    press(qtbot, viewer, Qt.Key.Key_H)
    assert not layer.visible
    press(qtbot, viewer, Qt.Key.Key_H)
    assert layer.visible
    prompts = start_clicking(qtbot, viewer, widget)
    click(qtbot, viewer, (24, 100))
    click(qtbot, viewer, (72, 100))
    assert len(prompts.data) == 2
    settled(qtbot, widget)
    press(qtbot, viewer, Qt.Key.Key_C)  # clear the clicks: back to the Run's result
    settled(qtbot, widget)
    assert not len(prompts.data) and not preview(viewer)[72, 100] and not preview(viewer)[24, 100]
    press(qtbot, viewer, Qt.Key.Key_R)  # run
    assert widget.controller.running
    press(qtbot, viewer, Qt.Key.Key_X)  # cancel
    qtbot.waitUntil(lambda: not widget.controller.running, timeout=5_000)


def test_clicks_become_balls_in_physical_units():
    """No viewer: a click marks the voxels within 5 of the finest spacing, in physical units;
    where two balls overlap the later click wins; a click beside the image marks nothing."""
    from napari_heatseg.widgets._prompts import prompt_marks

    spacing = (3.0, 1.0, 1.0)
    key = (((8.0, 20.0, 20.0), True), ((8.0, 20.0, 26.0), False), ((8.0, 20.0, 90.0), False))
    seeds, background = prompt_marks(key, (16, 40, 40), spacing, label_at=lambda index: 7)
    z, y, x = np.indices(seeds.shape)
    dist_positive = np.sqrt(((z - 8) * 3.0) ** 2 + (y - 20) ** 2 + (x - 20) ** 2)
    dist_negative = np.sqrt(((z - 8) * 3.0) ** 2 + (y - 20) ** 2 + (x - 26) ** 2)
    np.testing.assert_array_equal(background, dist_negative <= 5)
    np.testing.assert_array_equal(seeds, np.where((dist_positive <= 5) & ~(dist_negative <= 5), 7, 0))
    assert set(np.unique(np.nonzero(seeds)[0])) == {7, 8, 9}  # 5 / 3: one slice either side


def test_clicks_correct_a_volume(shown, qtbot):
    """3D, anisotropic: a negative click on the look-alike that 'all' took drops it, and the
    object keeps its voxels; the clicks are points of the volume (on the slice shown)."""
    viewer, widget = shown
    scale = (2.0, 1.0, 1.0)
    z, y, x = np.indices((12, 48, 64))
    big = ((z - 6) * 2.0) ** 2 + (y - 24) ** 2 + (x - 20) ** 2 < 11**2
    small = ((z - 6) * 2.0) ** 2 + (y - 24) ** 2 + (x - 50) ** 2 < 7**2
    image = ((big | small) + np.random.default_rng(4).normal(0, 0.2, big.shape)).astype(np.float32)
    start = np.zeros(big.shape, np.uint8)
    start[5:8, 21:28, 17:24] = 1
    choose(widget, viewer.add_image(image, name="vol", scale=scale),
           viewer.add_labels(start, name="ball", scale=scale), scope="all")
    run_to_end(qtbot, widget)
    assert preview(viewer)[small].mean() > 0.9
    prompts = start_clicking(qtbot, viewer, widget)
    viewer.dims.set_point(0, 6 * scale[0])
    click(qtbot, viewer, (24, 50), CTRL)
    settled(qtbot, widget)
    np.testing.assert_allclose(prompts.data[0], (6, 24, 50), atol=0.6)
    assert preview(viewer)[small].mean() < 0.2 and preview(viewer)[big].mean() > 0.95
    assert widget._inputs.as_core_arguments()["background"][5:8, 24, 50].all()  # a ball: 3 slices at spacing 2

    before = preview(viewer).copy()
    widget._where.value = "current slice"  # a click corrects the slice shown, and only it
    widget.loop.negative_clicks.value = False
    click(qtbot, viewer, (24, 50))
    settled(qtbot, widget)
    after = preview(viewer)
    assert widget._inputs.slice_index == 6 and after[6][small[6]].mean() > 0.9
    np.testing.assert_array_equal(np.delete(after, 6, axis=0), np.delete(before, 6, axis=0))


def test_brush_strokes_correct_too_and_are_not_offered_as_layers(shown, qtbot):
    viewer, widget = shown
    big, a, b = open_scene(qtbot, viewer, widget, scope="all")
    widget.loop.brush_button.clicked()
    marks = viewer.layers["heatseg marks"]
    assert viewer.layers.selection.active == marks and marks.mode == "paint"
    widget.reset_choices()
    for picker in (widget._start, widget._reference, widget._target):
        assert marks not in picker.choices
    with marks.block_history():  # one stroke of value 2 ("not object") across B
        for col in range(94, 107, 2):
            marks.paint((72, col), 2)
    settled(qtbot, widget)
    assert widget.status.value.startswith("done")
    assert preview(viewer)[b].mean() < 0.4  # from 0.99; measured 0.22 for this thin stroke
    assert preview(viewer)[a].mean() > 0.9 and preview(viewer)[big].mean() > 0.95
    assert widget._inputs.background[72, 94:107].all()
    press(qtbot, viewer, Qt.Key.Key_C)  # clear: the strokes go, the Run's result comes back
    settled(qtbot, widget)
    assert not marks.data.any() and preview(viewer)[b].mean() > 0.9


def test_accept_never_overwrites_labels_and_can_make_a_new_layer(shown, qtbot):
    viewer, widget = shown
    existing = np.zeros((96, 128), np.uint8)
    existing[40:56, 30:46] = 7  # a label of the user's, inside the object
    target = viewer.add_labels(existing.copy(), name="user labels")
    big, _, _ = open_scene(qtbot, viewer, widget, scope="object")
    widget.reset_choices()
    widget._target.value = target
    result = preview(viewer) > 0
    assert widget.loop.accept() == [8]  # the next free id
    np.testing.assert_array_equal(target.data[existing == 7], 7)
    np.testing.assert_array_equal(target.data[existing == 0], np.where(result, 8, 0)[existing == 0])
    assert (result & (existing == 7)).any()  # the object did cover the user's label

    widget.run_button.clicked()  # the same object again, into a new layer
    qtbot.waitUntil(lambda: not widget.controller.running, timeout=20_000)
    widget._target.value = "new layer"
    assert widget.loop.accept() == [1]
    new = viewer.layers[-1]
    assert new.name == "blobs heatseg" and new.data.dtype == np.int32 and (new.data[big] == 1).mean() > 0.95
    assert widget.loop.accept() is None  # nothing left to accept: a warning, nothing written


def test_clicks_on_the_nuclei_sample_and_a_screenshot(make_napari_viewer, qtbot, tmp_path):
    """The click protocol of the NoC benchmark on the bundled nuclei sample: each click at the
    deepest point of the larger error (missed nucleus: positive; false nucleus: negative).
    Measured: IoU 0.783 after Run, 0.791 after 5 clicks (each click 140-490 ms here).

    Writes docs/annotation_loop.png only when HEATSEG_UPDATE_SCREENSHOT=1.
    """
    import os
    from pathlib import Path

    from scipy import ndimage
    from skimage.io import imsave

    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1500, 950)
    _, widget = viewer.window.add_plugin_dock_widget("napari-heatseg", "Heat segmentation")
    viewer.open_sample("napari-heatseg", "nuclei2d")
    truth = np.asarray(viewer.layers["nuclei2d ground truth"].data) > 0
    choose(widget, viewer.layers["nuclei2d"], viewer.layers["nuclei2d start"])
    run_to_end(qtbot, widget)

    def iou():
        found = preview(viewer) > 0
        return (found & truth).sum() / (found | truth).sum()

    after_run = iou()
    prompts = start_clicking(qtbot, viewer, widget)
    for _ in range(5):
        found = preview(viewer) > 0
        depth = {kind: ndimage.distance_transform_edt(np.pad(error, 1))[1:-1, 1:-1]
                 for kind, error in ((True, truth & ~found), (False, found & ~truth))}
        positive = depth[True].max() >= depth[False].max()
        point = np.unravel_index(np.argmax(depth[positive]), truth.shape)
        widget.loop.negative_clicks.value = not positive
        prompts.add(np.asarray(point, float))
        settled(qtbot, widget)
        assert (preview(viewer)[point] > 0) == positive  # every click is obeyed where it was made
    assert iou() > after_run
    viewer.layers["nuclei2d start"].visible = False
    viewer.reset_view()
    qtbot.wait(200)
    shot = viewer.screenshot(canvas_only=False, flash=False)
    path = tmp_path / "annotation_loop.png"
    if os.environ.get("HEATSEG_UPDATE_SCREENSHOT") == "1":
        path = Path(__file__).resolve().parents[2] / "docs" / "annotation_loop.png"
    imsave(path, shot[..., :3], check_contrast=False)
    assert path.stat().st_size > 10_000


def test_another_image_or_widget_starts_the_loop_afresh(shown, qtbot):
    viewer, widget = shown
    open_scene(qtbot, viewer, widget, scope="object")
    prompts = start_clicking(qtbot, viewer, widget)
    click(qtbot, viewer, (24, 100))
    settled(qtbot, widget)
    other = viewer.add_image(np.zeros((40, 50), np.float32), name="other")
    widget.reset_choices()
    widget._image.value = other
    assert not len(prompts.data) and widget.loop.checkpoints.best(()) == (None, None)
    # a second heatseg widget takes the keys; closing the first leaves them to the second
    from app_model.types import KeyBinding

    second = type(widget)(viewer)
    bound = viewer.keymap[KeyBinding.from_str("Shift-N")]
    widget.loop.unbind_keys()
    assert viewer.keymap[KeyBinding.from_str("Shift-N")] is bound
    second.loop.unbind_keys()
    assert KeyBinding.from_str("Shift-N") not in viewer.keymap
