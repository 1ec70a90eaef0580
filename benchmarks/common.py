"""Shared helpers of the benchmark scripts: dev data, standard starts, peers, timing, tables.

Importable from the project root (``from benchmarks.common import load_set,
standard_start, score``) so the same starts and scores serve tuning and tests.

The standard starts follow design section 6:

- ``natural2d_grabcut``: the object's bounding box, filled, ``scope="inside"``;
  the 255 band is left out of the score;
- nuclei (``nuclei2d_dsb2018``, ``nuclei_stardist_demo`` 2D, ``cells3d_nuclei``):
  balls in the 3 largest nuclei, ``scope="all"``, target = every nucleus;
- ``brain1``: a ball in the tumour, ``scope="object"``, spacing from the file;
- ``prostate_phantom``: a ball in each compartment (one label each), ``scope="object"``.

A ball sits at the maximum of the (physical) distance transform of its object and
has half that depth as radius.
"""

import importlib.metadata
import importlib.util
import os
import platform
import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from napari_heatseg.core import metrics

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"


@dataclass(frozen=True)
class SetSpec:
    dataset: str
    items: tuple | None  # None: every item of the dataset
    kind: str  # "box", "nuclei", "ball", "compartments"
    scope: str


SETS = {
    "natural2d_grabcut": SetSpec("natural2d_grabcut", None, "box", "inside"),
    "natural2d_coco_mval": SetSpec("natural2d_coco_mval", None, "box", "inside"),
    "nuclei2d_dsb2018": SetSpec("nuclei2d_dsb2018", None, "nuclei", "all"),
    "nuclei_stardist_demo": SetSpec("nuclei_stardist_demo", ("nuclei2d_dsb2018",), "nuclei", "all"),
    "brain1": SetSpec("mri3d_pyradiomics", ("brain1",), "ball", "object"),
    "prostate_phantom": SetSpec("mri3d_pyradiomics", ("prostate_phantom",), "compartments", "object"),
    "cells3d_nuclei": SetSpec("cells3d_nuclei", ("cells3d_nuclei",), "nuclei", "all"),
}


@dataclass
class Item:
    """One benchmark case: image, standard start and target."""

    set_name: str
    name: str
    image: np.ndarray
    channel_axis: int | None
    spacing: tuple | None
    start: np.ndarray
    scope: str
    target: np.ndarray
    ignore: int | None

    @property
    def ndim(self):
        return self.start.ndim

    @property
    def colour(self):
        return self.channel_axis is not None


def read_item(dataset, item):
    """(image, mask, spacing) of one dev item; spacing None for 2D sets."""
    import tifffile

    path = DATA / dataset / "images" / f"{item}.tif"
    with tifffile.TiffFile(path) as tif:
        image = tif.asarray()
        meta = tif.shaped_metadata[0] if tif.shaped_metadata else {}
    spacing = meta.get("spacing_zyx") if isinstance(meta, dict) else None
    mask = tifffile.imread(DATA / dataset / "masks" / f"{item}.tif")
    return image, mask, (tuple(float(s) for s in spacing) if spacing else None)


def _ball_at_depth(region, spacing):
    """A ball inside ``region``: centred at its deepest point, radius half that depth."""
    depth = ndi.distance_transform_edt(region, sampling=spacing)
    centre = np.unravel_index(np.argmax(depth), depth.shape)
    radius = 0.5 * depth[centre]
    grid = np.ogrid[tuple(slice(0, n) for n in region.shape)]
    distance2 = sum(((g - c) * h) ** 2 for g, c, h in zip(grid, centre, spacing))
    ball = distance2 <= radius**2
    ball[centre] = True  # never empty, even for a one-voxel-thick object
    return ball & region


def standard_start(kind, mask, spacing=None):
    """The standard start of design section 6 for one ground-truth mask.

    Parameters
    ----------
    kind : {'box', 'nuclei', 'ball', 'compartments'}
        See :data:`SETS`.
    mask : ndarray
        The ground truth as stored (instance labels, 0/1/255, or compartments).
    spacing : tuple, optional
        Voxel size; the balls are round in physical units.

    Returns
    -------
    start, target : ndarray
        The start labels and the target to score against (binary, or the
        compartment labels for ``'compartments'``).
    """
    spacing = spacing or (1.0,) * mask.ndim
    start = np.zeros(mask.shape, np.uint8)
    if kind == "box":
        box = ndi.find_objects((mask == 1).astype(np.uint8))[0]
        start[box] = 1
        return start, mask
    if kind == "nuclei":
        ids, sizes = np.unique(mask[mask > 0], return_counts=True)
        for nucleus in ids[np.argsort(sizes)[::-1][:3]]:
            start[_ball_at_depth(mask == nucleus, spacing)] = 1
        return start, (mask > 0).astype(np.uint8)
    if kind == "ball":
        target = (mask > 0).astype(np.uint8)
        start[_ball_at_depth(target.astype(bool), spacing)] = 1
        return start, target
    if kind == "compartments":
        for value in np.unique(mask[mask > 0]):
            start[_ball_at_depth(mask == value, spacing)] = value
        return start, mask
    raise ValueError(f"unknown start kind {kind!r}; choose box, nuclei, ball or compartments.")


def available_sets():
    """Names of the sets whose data is present beside the project."""
    return [name for name, spec in SETS.items() if (DATA / spec.dataset / "images").is_dir()]


def load_set(name, *, limit=None):
    """The items of one set with their standard starts, as a list of :class:`Item`.

    Parameters
    ----------
    name : str
        A key of :data:`SETS`.
    limit : int, optional
        Use only the first ``limit`` items (sorted by name).
    """
    spec = SETS[name]
    names = spec.items or sorted(p.stem for p in (DATA / spec.dataset / "images").glob("*.tif"))
    items = []
    for item in names[:limit]:
        image, mask, spacing = read_item(spec.dataset, item)
        channel_axis = -1 if image.ndim == mask.ndim + 1 else None
        start, target = standard_start(spec.kind, mask, spacing)
        ignore = 255 if spec.kind == "box" else None
        items.append(Item(name, item, image, channel_axis, spacing, start, spec.scope, target, ignore))
    return items


def score(item, labels):
    """Mean IoU over the target's labels (the 255 band left out for GrabCut images)."""
    values = [v for v in np.unique(item.target) if v != 0 and v != item.ignore]
    counted = np.ones(item.target.shape, bool) if item.ignore is None else item.target != item.ignore
    labels = np.asarray(labels)
    return float(np.mean([
        metrics.iou((item.target == v) & counted, (labels == v) & counted) for v in values
    ]))


def grey255(item):
    """The image as 2D/3D grey on a 0-255 scale (luminance for RGB), float64."""
    image = np.asarray(item.image, np.float64)
    if item.colour:
        image = image @ np.array([0.299, 0.587, 0.114])
    low, high = np.percentile(image, [0.5, 99.5])
    return np.clip((image - low) / max(high - low, 1e-12), 0, 1) * 255.0


# ---------------------------------------------------------------- peers


def heatdiff_segmenter():
    """heatdiff's ``JacobiThetaSegmenter`` class, loaded by file path (the package does not import)."""
    try:
        files = importlib.metadata.files("heatdiff") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    paths = [f.locate() for f in files if str(f).endswith("processing/jacobi_segmentation.py")]
    if not paths:
        return None
    spec = importlib.util.spec_from_file_location("heatdiff_jacobi", paths[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.JacobiThetaSegmenter


def run_heatdiff(segmenter_class, image255, initial, max_iter=20):
    """heatdiff with its documented parameters; returns (mask, iterations)."""
    segmenter = segmenter_class(lambda_param=0.00025, dt=0.5)
    mask, history = segmenter.segment(np.array(image255, np.float64),
                                      np.array(initial, np.float64), max_iter=max_iter)
    return np.nan_to_num(mask) > 0.5, len(history)


#: OpenCV seeds GrabCut's colour models by k-means from its global random state, so a photo's
#: result depends on the calls made before; the set means over seeds 0-4 span 0.725-0.799 on
#: the GrabCut photos and 0.773-0.841 on the COCO photos. Every call is seeded (0 unless
#: given), and the photo tables report the mean over these seeds with their range.
GRABCUT_SEEDS = (0, 1, 2, 3, 4)


def run_grabcut(image_rgb, start, iterations=5, seed=0):
    """OpenCV GrabCut from the start's bounding box (GC_INIT_WITH_RECT), its random
    initialisation seeded with ``seed`` (see :data:`GRABCUT_SEEDS`)."""
    import cv2

    rows, cols = ndi.find_objects((start > 0).astype(np.uint8))[0]
    rect = (cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
    mask = np.zeros(start.shape, np.uint8)
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    bgr = np.ascontiguousarray(np.asarray(image_rgb, np.uint8)[..., ::-1])
    cv2.setRNGSeed(seed)
    cv2.grabCut(bgr, mask, rect, background, foreground, iterations, cv2.GC_INIT_WITH_RECT)
    return np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)


# ---------------------------------------------------------------- timing and output


def timed(fn, *args, repeat=1, **kwargs):
    """Run ``fn`` ``repeat`` times; (last result, median wall-clock seconds)."""
    times = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        times.append(time.perf_counter() - t0)
    return result, statistics.median(times)


def machine():
    """A one-line description of this machine and the libraries measured."""
    import scipy
    import skimage

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{cpu}, {cores} cores, Python {platform.python_version()}, numpy {np.__version__}, "
            f"scipy {scipy.__version__}, scikit-image {skimage.__version__}")


def stamp():
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def markdown_table(header, rows):
    """A Markdown table from a header and rows of already formatted cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def publish(text, output):
    """Print a report and write it to ``output`` (a Path), unless ``output`` is ``-``."""
    print(text)
    if str(output) != "-":
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n")

