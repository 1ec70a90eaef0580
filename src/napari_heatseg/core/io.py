"""Reading images and starts; the file types and their suffixes.

Readers: tif (tifffile), npy (numpy), NIfTI (``.nii``/``.nii.gz``, nibabel), NRRD
(``.nrrd``/``.nhdr``), MetaImage (``.mha``/``.mhd``) and DICOM series (a folder holding one,
or any one of its ``.dcm`` files; SimpleITK, :mod:`napari_heatseg.core.medical_io`), and the
2D picture formats png, jpg and bmp (imageio). Labels are written (by
:mod:`napari_heatseg.core.outputs`) as tif, npy, NIfTI, NRRD (``.nrrd``), MetaImage
(``.mha``) or png, never in a lossy format, never as two files (``.nhdr``, ``.mhd``) and never
as DICOM. Voxel spacing is taken from the file where it
has one:

- tif: the ``spacing_zyx`` shaped metadata (as written by :func:`write_labels`), else
  ImageJ's ``spacing`` (z) with the X/YResolution tags, else OME physical sizes;
- NIfTI: the header zooms, reversed to (z, y, x) since the array is read as (z, y, x);
- NRRD, MetaImage, DICOM: ITK's spacing, reversed to (z, y, x) likewise (the origin and
  direction are read again from the input when its labels are written).

Every failure is a :class:`HeatsegIOError` (an ``OSError``) whose message names the file, the
problem and the fix.
"""

import os
from pathlib import Path

import numpy as np

__all__ = ["DICOM", "DICOM_FOLDER", "HeatsegIOError", "MEDICAL", "SUFFIXES", "colour_axis", "grey_start",
           "label_suffix", "read_image", "stem", "stored_shape", "suffix"]

SUFFIXES = (".tif", ".tiff", ".npy", ".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd", ".png", ".jpg", ".jpeg",
            ".bmp")
MEDICAL = (".nrrd", ".nhdr", ".mha", ".mhd")  # read with SimpleITK, with their geometry
DICOM_FOLDER = ""  # the suffix of a folder holding a DICOM series: it has none
DICOM = (DICOM_FOLDER, ".dcm")  # a DICOM series, named by its folder or by any one of its files
_PICTURES = (".png", ".jpg", ".jpeg", ".bmp")  # 2D, read with imageio
_READ_ONLY = (".jpg", ".jpeg", ".bmp")  # lossy or 8-bit only: labels go to png instead
_ONE_FILE = {".nhdr": ".nrrd", ".mhd": ".mha"}  # header + data file: labels go to the one-file form


class HeatsegIOError(OSError):
    """A file could not be read or written; the message says why and what to do."""


def suffix(path, *, labels=False):
    """The supported suffix of ``path`` (``'.nii.gz'`` counts as one; :data:`DICOM_FOLDER` for a
    folder not named like an image), or raise; ``labels``: a file to write labels to, which the
    lossy or 8-bit picture types, the two-file ones and DICOM cannot be (for the last two,
    :func:`~napari_heatseg.core.outputs.write_labels` says why)."""
    name = Path(path).name.lower()
    for s in sorted((*SUFFIXES, *DICOM[1:]), key=len, reverse=True):
        if name.endswith(s):
            return s
    if Path(path).is_dir():
        return DICOM_FOLDER
    allowed = [s for s in SUFFIXES if not (labels and (s in _READ_ONLY or s in _ONE_FILE))]
    series = "" if labels else " or a folder holding a DICOM series"
    raise HeatsegIOError(f"{path}: unsupported file type; use one of {', '.join(allowed)}{series}.")


def stem(path):
    """File name without its supported suffix (``brain.nii.gz`` -> ``brain``)."""
    name = Path(path).name
    return name[: len(name) - len(suffix(path))]


def label_suffix(path):
    """Suffix to write the labels of the image ``path`` with: its own; png for jpg and bmp, the
    one-file form for ``.nhdr`` and ``.mhd`` (``.nrrd``, ``.mha``), ``.nrrd`` for a DICOM series."""
    kind = suffix(path)
    if kind in DICOM:
        return ".nrrd"
    return ".png" if kind in _READ_ONLY else _ONE_FILE.get(kind, kind)


def _tif_spacing(tif, ndim):
    meta = tif.shaped_metadata[0] if tif.shaped_metadata else None
    if isinstance(meta, dict) and "spacing_zyx" in meta:
        spacing = tuple(float(s) for s in np.ravel(meta["spacing_zyx"]))
        if len(spacing) == ndim:
            return spacing
    if tif.is_ome:
        import xml.etree.ElementTree as ET

        try:
            root = ET.fromstring(tif.ome_metadata)
        except ET.ParseError:
            return None
        for elem in root.iter():
            if elem.tag.endswith("Pixels"):
                sizes = [elem.get(f"PhysicalSize{a}") for a in "ZYX"]
                values = [float(s) if s else 1.0 for s in sizes]
                return tuple(values[-ndim:]) if any(sizes) else None
    page = tif.pages[0]
    xres, yres = page.tags.get("XResolution"), page.tags.get("YResolution")
    ij = tif.imagej_metadata or {}
    if xres is None or yres is None or not (tif.is_imagej or "spacing" in ij):
        return None
    (xn, xd), (yn, yd) = xres.value, yres.value
    if not (xn and yn):
        return None
    yx = (yd / yn, xd / xn)
    if ndim == 2:
        return yx
    if ndim == 3 and "spacing" in ij:
        return (float(ij["spacing"]), *yx)
    return None


def _read_tif(path):
    import logging

    import tifffile

    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.CRITICAL)  # its warnings would duplicate our one-line error
    try:
        with tifffile.TiffFile(path) as tif:
            image = tif.asarray()
            spacing = _tif_spacing(tif, image.ndim)
    finally:
        logger.setLevel(level)
    return image, spacing


def _read_nifti(path):
    try:
        import nibabel
    except ImportError:
        raise HeatsegIOError(
            f"{path}: reading NIfTI needs nibabel; install it with `pip install nibabel` "
            f"(or `pip install napari-heatseg[nifti]`)."
        ) from None
    img = nibabel.load(str(path))
    data = np.asanyarray(img.dataobj)
    zooms = tuple(float(z) for z in img.header.get_zooms()[: data.ndim])
    # nibabel gives (x, y, z); heatseg works in (z, y, x)
    data = np.ascontiguousarray(data.transpose(tuple(range(data.ndim))[::-1]))
    spacing = zooms[::-1] if all(np.isfinite(zooms)) and all(z > 0 for z in zooms) else None
    return data, spacing


def read_image(path):
    """Read an image or label file.

    Parameters
    ----------
    path : str or Path
        A ``.tif``/``.tiff``, ``.npy``, ``.nii``/``.nii.gz``, ``.nrrd``/``.nhdr``,
        ``.mha``/``.mhd``, ``.png``, ``.jpg``/``.jpeg`` or ``.bmp`` file (the pictures are
        2D, colour ones with channels last), or a DICOM series: the folder holding it, or
        any one of its ``.dcm`` files.

    Returns
    -------
    image : ndarray
        The array as stored (NIfTI, NRRD, MetaImage, DICOM: axes reversed to (z, y, x)).
    spacing : tuple of float or None
        Voxel size per axis from the file's metadata, or None if it has none.

    Raises
    ------
    HeatsegIOError
        The file is missing, of an unsupported type, unreadable, corrupt or truncated.
    """
    path = Path(path)
    kind = suffix(path)
    if not path.exists():
        raise HeatsegIOError(f"{path}: no such file; check the path.")
    if path.is_dir() and kind != DICOM_FOLDER:
        raise HeatsegIOError(f"{path}: is a folder, not an image file.")
    if not os.access(path, os.R_OK):
        raise HeatsegIOError(f"{path}: not readable (permission denied); fix its permissions.")
    try:
        if kind in (".tif", ".tiff"):
            image, spacing = _read_tif(path)
        elif kind == ".npy":
            image, spacing = np.load(path, allow_pickle=False), None
        elif kind in _PICTURES:
            import imageio.v3 as iio

            image, spacing = iio.imread(path), None
        elif kind in MEDICAL or kind in DICOM:
            from .medical_io import read_medical

            image, geometry = read_medical(path)
            spacing = geometry.spacing
        else:
            image, spacing = _read_nifti(path)
    except HeatsegIOError:
        raise
    except Exception as exc:  # tifffile, numpy and nibabel raise many types on bad files
        raise HeatsegIOError(
            f"{path}: cannot read this {kind} file, it looks corrupt or truncated "
            f"({type(exc).__name__}: {exc}); re-export or copy it again."
        ) from exc
    if image.size == 0:
        raise HeatsegIOError(f"{path}: the file holds an empty array (shape {image.shape}).")
    return image, spacing


def colour_axis(path, image, start=None):
    """-1 if the file holds a colour picture (channels last), else None: what ``--channel-axis``
    would say, told from the file itself so that a folder may mix grey and colour images.

    Colour means: a 2D picture file (png, jpg, bmp) with 3 or 4 channels, a tif stored as RGB
    (its photometric tag), a NRRD, MetaImage or DICOM file of 3 or 4 components per voxel, or
    any image with one more axis of 3 or 4 values than the start.
    """
    image = np.asarray(image)
    colourful = image.ndim >= 3 and image.shape[-1] in (3, 4)
    if not colourful:
        return None
    if start is not None and np.ndim(start) == image.ndim - 1 and np.shape(start) == image.shape[:-1]:
        return -1
    kind = suffix(Path(path))
    if kind in _PICTURES:
        return -1 if image.ndim == 3 else None
    if kind in MEDICAL or kind in DICOM:  # ITK's pixels of several components (RGB) come last
        from .medical_io import read_geometry

        return -1 if len(read_geometry(path).spacing) == image.ndim - 1 else None
    if kind in (".tif", ".tiff"):
        import tifffile

        with tifffile.TiffFile(path) as tif:
            return -1 if tif.pages[0].photometric == tifffile.PHOTOMETRIC.RGB else None
    return None


def grey_start(start, spatial_shape):
    """A start painted in a picture editor and saved as RGB or RGBA, as labels: its first
    channel when the colour channels are equal (and any fourth one is constant), else unchanged
    (the start's own checks then name the shape)."""
    start = np.asarray(start)
    if start.ndim != len(spatial_shape) + 1 or start.shape[:-1] != tuple(spatial_shape) or start.shape[-1] not in (3, 4):
        return start
    colour = start[..., :3]
    alpha_constant = start.shape[-1] == 3 or np.ptp(start[..., 3]) == 0
    if alpha_constant and np.array_equal(colour[..., 0], colour[..., 1]) and np.array_equal(colour[..., 0], colour[..., 2]):
        return colour[..., 0]
    return start


def stored_shape(path):
    """``(shape, dtype)`` of the array in an image file, read from its header only (tif, npy,
    NIfTI, NRRD, MetaImage, DICOM), so that a run that cannot fit in memory is refused before the file is read; None
    where the header does not say or cannot be read (the reader then reports the problem)."""
    try:
        kind = suffix(path)
        if kind in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                return tuple(series.shape), np.dtype(series.dtype)
        if kind == ".npy":
            array = np.load(path, mmap_mode="r", allow_pickle=False)
            return tuple(array.shape), array.dtype
        if kind in (".nii", ".nii.gz"):
            import nibabel

            header = nibabel.load(str(path)).header
            return tuple(header.get_data_shape())[::-1], np.dtype(header.get_data_dtype())
        if kind in MEDICAL or kind in DICOM:
            from .medical_io import medical_shape

            return medical_shape(path)
    except Exception:  # noqa: BLE001 - any failure here is the reader's to report, with its message
        return None
    return None

