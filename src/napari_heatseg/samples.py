"""Small real images bundled with napari-heatseg, each with a standard start.

>>> from napari_heatseg.samples import SAMPLES, load_sample
>>> sample = load_sample("nuclei2d")          # doctest: +SKIP
>>> labels = hs.segment(sample["image"], sample["start"], scope=sample["scope"],
...                     spacing=sample["spacing"], channel_axis=sample["channel_axis"])  # doctest: +SKIP

The files live in the project's top-level ``sample_data/`` folder (credits and licences in
``sample_data/CREDITS.md``). The starts follow the project's standard protocol: balls in
the three largest nuclei (``scope="all"``), a ball inside the tumour of radius half its
depth in physical units (``scope="object"``), a filled box around the object of a photo
(``scope="inside"``).
"""

from pathlib import Path

import numpy as np
from scipy import ndimage

__all__ = ["SAMPLES", "SAMPLE_DIR", "ball_start", "box_start", "load_sample"]

SAMPLE_DIR = Path(__file__).parent / "sample_data"  # a link to the top-level sample_data/ (copied into wheels)
SAMPLES = ("nuclei2d", "mri3d", "rgb_photo")

_CREDITS = {
    "nuclei2d": "Data Science Bowl 2018 stage-1 test image 0a849e0e (BBBC038, Caicedo et al., "
                "Nature Methods 2019), CC0",
    "mri3d": "pyradiomics test data brain1 (BSD-3): TCGA-02-0003 T1 post-contrast MRI from The Cancer "
             "Imaging Archive, TCGA-GBM collection, CC BY 3.0; cropped in (y, x)",
    "rgb_photo": "scikit-image data.coffee() (photo by Rachel Michetti, courtesy of Pikolo Espresso "
                 "Bar, CC0), downsampled by 2",
}


def ball_start(truth, *, n=3, spacing=None):
    """Balls inside the ``n`` largest objects of ``truth``, radius half the object's depth.

    Parameters
    ----------
    truth : (M, N[, P]) ndarray of int or bool
        Instance labels (or a binary mask: its connected components are the objects).
    n : int
        Number of objects to mark, largest first.
    spacing : sequence of float, optional
        Physical voxel size per axis; depth and radius are measured in these units.

    Returns
    -------
    start : (M, N[, P]) ndarray of uint8
        1 inside the balls (clipped to their objects), 0 elsewhere.
    """
    truth = np.asarray(truth)
    objects = truth if truth.max() > 1 else ndimage.label(truth > 0)[0]
    ids, counts = np.unique(objects[objects > 0], return_counts=True)
    sampling = np.ones(truth.ndim) if spacing is None else np.asarray(spacing, dtype=float)
    start = np.zeros(truth.shape, dtype=np.uint8)
    for obj in ids[np.argsort(counts)[::-1][:n]]:
        slices = ndimage.find_objects((objects == obj).astype(np.uint8))[0]
        inside = objects[slices] == obj
        depth = ndimage.distance_transform_edt(np.pad(inside, 1), sampling=sampling)[(slice(1, -1),) * truth.ndim]
        centre = np.unravel_index(np.argmax(depth), inside.shape)
        radius = 0.5 * depth[centre]
        grid = np.indices(inside.shape, dtype=float)
        dist2 = sum(((grid[a] - centre[a]) * sampling[a]) ** 2 for a in range(truth.ndim))
        start[slices][(dist2 <= radius**2) & inside] = 1
    return start


def box_start(shape, box):
    """A filled box: ``box`` is ``((y0, y1), (x0, x1)[, ...])`` half-open per axis."""
    start = np.zeros(shape, dtype=np.uint8)
    start[tuple(slice(a, b) for a, b in box)] = 1
    return start


def _read(name):
    import tifffile

    path = SAMPLE_DIR / f"{name}.tif"
    if not path.exists():
        raise FileNotFoundError(
            f"sample file {path} is missing; the samples ship in the project's sample_data/ folder "
            f"(install napari-heatseg from its source tree, e.g. `pip install -e .`)."
        )
    with tifffile.TiffFile(path) as tif:
        meta = tif.shaped_metadata[0] if tif.shaped_metadata else {}
        return tif.asarray(), meta


def load_sample(name):
    """Load a bundled sample with its standard start.

    Parameters
    ----------
    name : str
        One of :data:`SAMPLES`.

    Returns
    -------
    sample : dict
        ``image`` (ndarray), ``start`` (uint8 labels of the spatial shape), ``truth``
        (ground truth labels, or None), ``spacing`` (tuple or None), ``channel_axis``
        (int or None), ``scope`` (str) and ``credit`` (str).
    """
    if name not in SAMPLES:
        raise ValueError(f"unknown sample {name!r}; choose one of {', '.join(SAMPLES)}.")
    if name == "nuclei2d":
        image, _ = _read("nuclei2d")
        truth, _ = _read("nuclei2d_truth")
        return dict(image=image, start=ball_start(truth, n=3), truth=truth, spacing=None,
                    channel_axis=None, scope="all", credit=_CREDITS[name])
    if name == "mri3d":
        image, meta = _read("mri3d")
        truth, _ = _read("mri3d_truth")
        spacing = tuple(float(s) for s in meta["spacing_zyx"])
        return dict(image=image, start=ball_start(truth, n=1, spacing=spacing), truth=truth,
                    spacing=spacing, channel_axis=None, scope="object", credit=_CREDITS[name])
    image, _ = _read("rgb_photo")
    start = box_start(image.shape[:2], ((4, 152), (84, 212)))  # the cup with its handle
    return dict(image=image, start=start, truth=None, spacing=None, channel_axis=-1,
                scope="inside", credit=_CREDITS[name])
