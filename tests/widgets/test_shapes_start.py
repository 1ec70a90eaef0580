"""Shapes starts: rasterised on the image grid, respecting layer transforms."""

import numpy as np
import pytest
from napari.layers import Image, Shapes

import napari_heatseg as hs
from gui_helpers import choose, disk_image, iou, run_to_end
from napari_heatseg.widgets._inputs import LayerChoiceError
from napari_heatseg.widgets._shapes import shapes_start


def raster(shapes, image, shape, **kwargs):
    return shapes_start(shapes, image, shape, world_point=(0,) * len(shape), **kwargs)


def test_rectangle_covers_its_corner_pixels():
    image = Image(np.zeros((40, 50)))
    start = raster(Shapes([[[5, 10], [5, 20], [15, 20], [15, 10]]], shape_type="rectangle"), image, (40, 50))
    expected = np.zeros((40, 50), np.uint8)
    expected[5:16, 10:21] = 1
    np.testing.assert_array_equal(start, expected)


def test_scale_and_translate_of_both_layers_are_respected():
    """A rectangle drawn in world units lands on the same voxels whatever the layers' transforms."""
    image = Image(np.zeros((40, 50)), scale=(2.0, 0.5), translate=(10.0, -5.0))
    # world box rows 20..40, columns 0..5  ->  image rows 5..15, columns 10..20
    world = np.array([[20, 0], [20, 5], [40, 5], [40, 0]], float)
    shapes = Shapes([(world - (4.0, 1.0)) / (4.0, 0.25)], shape_type="rectangle", scale=(4.0, 0.25),
                    translate=(4.0, 1.0))
    start = raster(shapes, image, (40, 50))
    expected = np.zeros((40, 50), np.uint8)
    expected[5:16, 10:21] = 1
    np.testing.assert_array_equal(start, expected)


def test_ellipse_polygon_and_path():
    image = Image(np.zeros((60, 60)))
    ellipse = raster(Shapes([[[10, 10], [10, 30], [30, 30], [30, 10]]], shape_type="ellipse"), image, (60, 60))
    yy, xx = np.mgrid[:60, :60]
    np.testing.assert_array_equal(ellipse > 0, (yy - 20) ** 2 + (xx - 20) ** 2 <= 100)
    triangle = raster(Shapes([[[40, 40], [40, 55], [55, 40]]], shape_type="polygon"), image, (60, 60))
    assert triangle[45, 45] and not triangle[54, 54] and triangle.sum() == pytest.approx(16 * 17 / 2, abs=10)
    path = raster(Shapes([[[5, 5], [5, 50]]], shape_type="path"), image, (60, 60), label=3)
    assert path.dtype == np.uint8 and set(np.unique(path)) == {0, 3}
    np.testing.assert_array_equal(np.nonzero(path), (np.full(46, 5), np.arange(5, 51)))


def test_a_closed_path_is_a_filled_lasso():
    image = Image(np.zeros((40, 40)))
    t = np.linspace(0, 2 * np.pi, 60)
    loop = np.column_stack([20 + 10 * np.sin(t), 20 + 10 * np.cos(t)])  # ends meet
    filled = raster(Shapes([loop], shape_type="path"), image, (40, 40))
    assert filled[20, 20] and filled.sum() == pytest.approx(np.pi * 100, rel=0.1)
    arc = raster(Shapes([loop[:40]], shape_type="path"), image, (40, 40))  # open: a scribble
    assert not arc[20, 20] and arc.sum() < 60


def test_3d_shapes_go_on_their_slice_and_off_plane_shapes_are_refused():
    image = Image(np.zeros((6, 30, 30)), scale=(3, 1, 1))
    box = np.array([[2, 5, 5], [2, 5, 10], [2, 10, 10], [2, 10, 5]], float)
    start = raster(Shapes([box], shape_type="rectangle", scale=(3, 1, 1)), image, (6, 30, 30))
    assert start[2].sum() == 36 and start.sum() == 36
    tilted = box.copy()
    tilted[2:, 0] = 4
    with pytest.raises(LayerChoiceError, match="not drawn on one slice"):
        raster(Shapes([tilted], shape_type="polygon"), image, (6, 30, 30))


def test_shapes_outside_the_image_are_refused():
    image = Image(np.zeros((20, 20)))
    with pytest.raises(LayerChoiceError, match="do not cover any pixel"):
        raster(Shapes([[[30, 30], [30, 40], [40, 40], [40, 30]]], shape_type="rectangle"), image, (20, 20))


@pytest.mark.gui
def test_shapes_start_gives_the_same_result_as_the_labels_start(viewer_widget, qtbot):
    """A box drawn as a Shapes rectangle and the same box painted in Labels give equal results,
    also when the layers are scaled."""
    viewer, widget = viewer_widget
    image, _ = disk_image()
    box = np.zeros(image.shape, np.uint8)
    box[22:71, 18:69] = 1
    scale = (0.5, 0.5)
    image_layer = viewer.add_image(image, name="disk", scale=scale)
    labels = viewer.add_labels(box, name="box labels", scale=scale)
    corners = np.array([[22, 18], [22, 68], [70, 68], [70, 18]], float) * scale
    shapes = viewer.add_shapes([corners], shape_type="rectangle", name="box shape")
    choose(widget, image_layer, labels, scope="inside", max_iter=30)
    run_to_end(qtbot, widget)
    from_labels = viewer.layers["heatseg preview"].data.copy()
    choose(widget, start=shapes)
    run_to_end(qtbot, widget)
    from_shapes = viewer.layers["heatseg preview"].data
    np.testing.assert_array_equal(widget._inputs.start, box)
    np.testing.assert_array_equal(from_shapes, from_labels)
    np.testing.assert_array_equal(from_shapes, hs.segment(image, box, scope="inside", spacing=scale,
                                                          **widget._params()))


def test_drawing_boxes_as_the_start_switches_scope_to_inside_once(viewer_widget, qtbot):
    """Boxes are drawn around objects (GrabCut, SAM), so scope 'object' would grow past them."""
    viewer, widget = viewer_widget
    image, truth = disk_image()
    image_layer = viewer.add_image(image, name="disk")
    scribble = viewer.add_shapes([[[40, 40], [50, 50]]], shape_type="path", name="scribble")
    boxes = viewer.add_shapes(name="boxes")
    choose(widget, image_layer, scribble)
    assert widget._scope.value == "object"  # a scribble is a mark inside the object
    choose(widget, start=boxes)
    assert widget._scope.value == "object"  # nothing drawn yet
    boxes.add_rectangles(np.array([[20, 16], [20, 72], [76, 72], [76, 16]], float))
    assert widget._scope.value == "inside"
    run_to_end(qtbot, widget)
    assert iou(viewer.layers["heatseg preview"].data, truth) > 0.9
    widget._scope.value = "object"  # the user's later choice stands
    boxes.add_ellipses(np.array([[60, 60], [60, 70], [70, 70], [70, 60]], float))
    assert widget._scope.value == "object"
