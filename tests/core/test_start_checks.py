"""Start mistakes that gave silent wrong answers (issue 18): graded starts, boxes with the
default scope, scope "inside" around nothing. Each: the exact warning, and the right answer."""

import re
import warnings

import numpy as np
import pytest
from dev_data import DATA
from scipy import ndimage as ndi

import napari_heatseg as hs
from napari_heatseg.core.inputs import prepare
from napari_heatseg.core.start_checks import _is_convex_outline, check_start, graded_start

skimage_data = pytest.importorskip("skimage.data")


def iou(a, b):
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    return np.count_nonzero(a & b) / max(np.count_nonzero(a | b), 1)


@pytest.fixture(scope="module")
def coin():
    """The coins photo, one coin's mask, and a stroke painted across that coin (0/255)."""
    cv2 = pytest.importorskip("cv2")
    image = skimage_data.coins()
    labels, _ = ndi.label(ndi.binary_fill_holes(image > 110))
    sizes = np.bincount(labels.ravel())[1:]
    mask = labels == np.argsort(sizes)[-3] + 1
    cy, cx = (int(round(c)) for c in ndi.center_of_mass(mask))
    stroke = np.zeros(image.shape, np.uint8)
    cv2.line(stroke, (cx - 8, cy - 3), (cx + 8, cy + 3), 255, 7)
    return image, mask, stroke


def no_warnings(call):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return call()


# ------------------------------------------------------------------------- graded starts

def test_blurred_brush_stroke_is_binarised_and_grows_like_the_binary_one(coin):
    image, mask, stroke = coin
    soft = np.round(ndi.gaussian_filter(stroke.astype(float), 2.5)).astype(np.uint8)
    n_values, top = np.unique(soft[soft > 0]).size, int(soft.max())
    assert n_values > 100
    expected = (f"`start` has {n_values} distinct values that look like a soft-edged mask (a blurred or "
                f"anti-aliased brush stroke), not {n_values} labels; it was binarised: values above half its "
                f"maximum (above {top / 2:g}) became one label, {top}, and the rest unmarked. To choose "
                f"yourself, pass integer labels (for example (start > {top / 2:g}) * {top}).")
    with pytest.warns(UserWarning, match=re.escape(expected)):
        labels = hs.segment(image, soft, scope="object")
    binary = no_warnings(lambda: hs.segment(image, stroke, scope="object"))
    assert set(np.unique(labels).tolist()) == {0, top}
    assert iou(labels, binary) > 0.98 and iou(labels, mask) > 0.95


def test_jpeg_start_is_binarised_as_compression_noise(coin):
    cv2 = pytest.importorskip("cv2")
    image, mask, stroke = coin
    jpeg = cv2.imdecode(cv2.imencode(".jpg", stroke, [cv2.IMWRITE_JPEG_QUALITY, 75])[1], cv2.IMREAD_GRAYSCALE)
    n_values = np.unique(jpeg[jpeg > 0]).size
    assert n_values >= 10 and jpeg.max() == 255
    expected = (f"`start` has {n_values} distinct values that look like compression noise (a mask saved as "
                f"JPEG), not {n_values} labels; it was binarised: values above half its maximum (above "
                f"127.5) became one label, 255, and the rest unmarked.")
    with pytest.warns(UserWarning, match=re.escape(expected)):
        labels = hs.segment(image, jpeg, scope="object")
    assert set(np.unique(labels).tolist()) == {0, 255}
    assert iou(labels, hs.segment(image, stroke, scope="object")) > 0.98 and iou(labels, mask) > 0.95


def test_a_genuine_multi_label_start_stays_multi_label():
    """Six blobs, two of them touching, labels 1..6: no warning, six labels out."""
    yy, xx = np.mgrid[:96, :96]
    image = np.zeros((96, 96))
    start = np.zeros((96, 96), np.uint8)
    centres = [(20, 20), (20, 50), (20, 62), (60, 20), (60, 60), (80, 80)]  # 2 and 3 touch
    for label, (cy, cx) in enumerate(centres, start=1):
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < 8**2] = label / 6
        start[(yy - cy) ** 2 + (xx - cx) ** 2 < 6**2] = label
    labels = no_warnings(lambda: hs.segment(image, start, scope="all"))
    assert set(np.unique(labels).tolist()) == set(range(7))


def test_tissue_like_instance_labels_are_not_graded():
    """400 touching Voronoi cells (about 13 px across), numbered in scan order."""
    rng = np.random.default_rng(0)
    seeds = rng.integers(0, 256, (400, 2))
    yy, xx = np.mgrid[:256, :256]
    cells = np.argmin((yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2, axis=-1) + 1
    prepared = prepare(np.zeros((256, 256)), cells)
    assert graded_start(prepared.phases, prepared.label_values) is None


def test_instance_masks_of_the_development_data_are_not_graded():
    tifffile = pytest.importorskip("tifffile")
    paths = sorted(DATA.glob("*/masks/*.tif"))
    if not paths:
        pytest.skip(f"development data not found beside the project ({DATA})")
    checked = 0
    for path in paths:
        mask = tifffile.imread(path)
        if mask.ndim == 3 and mask.shape[-1] == 3 or np.unique(mask).size < 6:
            continue
        prepared = prepare(np.zeros(mask.shape), mask)
        assert graded_start(prepared.phases, prepared.label_values) is None, path.name
        checked += 1
    assert checked >= 20


# ------------------------------------------------------------------------- box starts

@pytest.fixture(scope="module")
def astronaut_head():
    image = skimage_data.astronaut()
    box = np.zeros(image.shape[:2], np.uint8)
    box[30:250, 140:330] = 1
    return image, box


def test_box_start_with_the_default_scope_gives_the_inside_answer(astronaut_head):
    """The issue's case: the object scope segmented the backdrop and the shuttle."""
    image, box = astronaut_head
    default = no_warnings(lambda: hs.segment(image, box, channel_axis=-1))
    inside = hs.segment(image, box, channel_axis=-1, scope="inside")
    np.testing.assert_array_equal(default, inside)
    assert not np.any(default[box == 0])  # within the box
    grown = hs.segment(image, box, channel_axis=-1, scope="object")  # explicit scope: obeyed
    assert np.any(grown[box == 0])


def test_polygon_and_one_slice_box_starts_count_as_boxes():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:96, :96]
    disk = (yy - 48) ** 2 + (xx - 48) ** 2 < 20**2
    image = disk + rng.normal(0, 0.1, disk.shape)
    pentagon = np.zeros(disk.shape, np.uint8)
    angles = np.pi / 2 + 2 * np.pi * np.arange(5) / 5
    corners = np.stack([48 + 32 * np.cos(angles), 48 + 32 * np.sin(angles)], axis=1)
    cv2.fillPoly(pentagon, [np.round(corners).astype(np.int32)], 1)
    assert check_start(prepare(image, pentagon, scope=None)).scope == "inside"
    volume = np.stack([image * (1 - abs(z - 3) / 4) for z in range(7)])
    box = np.zeros(volume.shape, np.uint8)
    box[3, 20:77, 20:77] = 1  # a rectangle on the middle slice only
    assert check_start(prepare(volume, box, scope=None)).scope == "inside"
    cuboid = np.zeros(volume.shape, np.uint8)
    cuboid[1:6, 20:77, 20:77] = 1
    assert check_start(prepare(volume, cuboid, scope=None)).scope == "inside"


@pytest.mark.parametrize("shape,expected", [
    ("triangle", True), ("hexagon", True), ("ellipse", True), ("disk", False), ("octagon", False),
    ("thin stroke", False), ("L", False), ("ring", False)])
def test_which_shapes_are_box_like_outlines(shape, expected):
    """Filled convex polygons and ellipses (what the widget's Shapes give) count; round
    shapes (a disk, an octagon), thin strokes and non-convex or holed shapes do not."""
    cv2 = pytest.importorskip("cv2")
    mask = np.zeros((120, 120), np.uint8)
    if shape in ("triangle", "hexagon", "octagon"):
        n = {"triangle": 3, "hexagon": 6, "octagon": 8}[shape]
        angles = 0.3 + 2 * np.pi * np.arange(n) / n
        cv2.fillPoly(mask, [np.round(np.stack([60 + 50 * np.cos(angles), 60 + 50 * np.sin(angles)], 1))
                            .astype(np.int32)], 1)
    elif shape == "disk":
        cv2.circle(mask, (60, 60), 40, 1, -1)
    elif shape == "ellipse":
        cv2.ellipse(mask, (60, 60), (50, 20), 30, 0, 360, 1, -1)
    elif shape == "thin stroke":
        cv2.line(mask, (20, 20), (100, 90), 1, 5)
    elif shape == "L":
        mask[10:110, 10:40] = 1
        mask[80:110, 10:110] = 1
    else:
        cv2.circle(mask, (60, 60), 40, 1, -1)
        cv2.circle(mask, (60, 60), 10, 0, -1)
    assert _is_convex_outline(mask.astype(bool)) is expected


@pytest.mark.parametrize("side", [4, 8, 16, 30])
def test_a_square_inside_a_uniform_object_is_a_mark_not_a_box(side):
    """Small squares are blobs; bigger ones whose content is like their surroundings hold
    nothing to find inside: the default scope grows them as objects."""
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[:128, :128]
    disk = (yy - 64) ** 2 + (xx - 64) ** 2 < 50**2
    image = disk + rng.normal(0, 0.2, disk.shape)
    start = np.zeros(disk.shape, np.uint8)
    start[64 - side // 2: 64 + side // 2, 64 - side // 2: 64 + side // 2] = 1
    assert check_start(prepare(image, start, scope=None)).scope == "object"
    assert iou(no_warnings(lambda: hs.segment(image, start)), disk) > 0.95


def test_lines_and_clicks_are_not_boxes():
    image = np.zeros((64, 64))
    image[16:48, 16:48] = 1
    start = np.zeros((64, 64), np.uint8)
    start[32, 10:54] = 1  # a straight scribble across the square
    start[5, 5] = 2
    assert check_start(prepare(image, start, scope=None)).scope == "object"


# --------------------------------------------------------------- inside finds nothing

def test_blob_start_with_scope_inside_warns_that_it_found_nothing(coin):
    """The issue's case: a blob inside a coin with scope 'inside' wrote 0 labelled voxels."""
    image, mask, _ = coin
    cy, cx = (int(round(c)) for c in ndi.center_of_mass(mask))
    blob = np.zeros(image.shape, np.uint8)
    blob[cy - 3: cy + 4, cx - 3: cx + 4] = 1
    expected = ("scope='inside' found nothing: it looks for an object within the marked region, against "
                "what surrounds it, and the marked region holds nothing that differs from its surroundings. "
                "If the start is a mark inside the object (not a box or outline around it), use "
                "scope='object'.")
    with pytest.warns(UserWarning, match=re.escape(expected)):
        labels = hs.segment(image, blob, scope="inside")
    assert not labels.any()
    grown = no_warnings(lambda: hs.segment(image, blob))  # the default scope grows the blob
    assert iou(grown, mask) > 0.95


def test_evolve_warns_at_the_end_not_when_closed_early(coin):
    image, mask, _ = coin
    cy, cx = (int(round(c)) for c in ndi.center_of_mass(mask))
    blob = np.zeros(image.shape, np.uint8)
    blob[cy - 3: cy + 4, cx - 3: cx + 4] = 1
    with pytest.warns(UserWarning, match="scope='inside' found nothing"):
        steps = list(hs.evolve(image, blob, scope="inside"))
    assert not steps[-1].labels.any()
    states = hs.evolve(image, blob, scope="inside")
    no_warnings(lambda: (next(states), states.close()))


def test_scope_none_is_documented_and_other_values_are_refused():
    image = np.zeros((16, 16))
    start = np.ones((16, 16), np.uint8)
    assert check_start(prepare(image, start, scope=None)).scope in ("inside", "object")
    with pytest.raises(ValueError, match=re.escape("choose one of 'inside', 'object', 'all', or None")):
        prepare(image, start, scope="box")
