"""Reading images and starts, and writing label images safely.

Readers: tif (tifffile), npy (numpy), NIfTI (``.nii``/``.nii.gz``, nibabel) and the 2D
picture formats png, jpg and bmp (imageio). Labels are written as tif, npy, NIfTI or png,
never in a lossy format. Voxel spacing is taken from the file where it has one:

- tif: the ``spacing_zyx`` shaped metadata (as written by :func:`write_labels`), else
  ImageJ's ``spacing`` (z) with the X/YResolution tags, else OME physical sizes;
- NIfTI: the header zooms, reversed to (z, y, x) since the array is read as (z, y, x).

Writers never overwrite an existing file unless asked, and write to a temporary file in the
target folder that is renamed into place (``os.replace``) only when complete, so a crash
never leaves a half-written output. Every failure is a :class:`HeatsegIOError` (an
``OSError``) whose message names the file, the problem and the fix.
"""

import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["HeatsegIOError", "SUFFIXES", "atomic_write", "label_suffix", "read_image", "stem", "suffix",
           "write_labels"]

SUFFIXES = (".tif", ".tiff", ".npy", ".nii", ".nii.gz", ".png", ".jpg", ".jpeg", ".bmp")
_PICTURES = (".png", ".jpg", ".jpeg", ".bmp")  # 2D, read with imageio
_READ_ONLY = (".jpg", ".jpeg", ".bmp")  # lossy or 8-bit only: labels go to png instead
_UMASK = os.umask(0o022)
os.umask(_UMASK)


class HeatsegIOError(OSError):
    """A file could not be read or written; the message says why and what to do."""


def suffix(path):
    """The supported suffix of ``path`` (``'.nii.gz'`` counts as one), or raise."""
    name = Path(path).name.lower()
    for s in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(s):
            return s
    raise HeatsegIOError(
        f"{path}: unsupported file type; use one of {', '.join(SUFFIXES)}."
    )


def stem(path):
    """File name without its supported suffix (``brain.nii.gz`` -> ``brain``)."""
    name = Path(path).name
    return name[: len(name) - len(suffix(path))]


def label_suffix(path):
    """Suffix to write the labels of the image ``path`` with: its own, png for jpg and bmp."""
    kind = suffix(path)
    return ".png" if kind in _READ_ONLY else kind


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
        A ``.tif``/``.tiff``, ``.npy``, ``.nii``/``.nii.gz``, ``.png``, ``.jpg``/``.jpeg``
        or ``.bmp`` file (the pictures are 2D, colour ones with channels last).

    Returns
    -------
    image : ndarray
        The array as stored (NIfTI: axes reversed to (z, y, x)).
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
    if path.is_dir():
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


def _check_target(path, overwrite):
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise HeatsegIOError(f"{path}: the output folder {folder} does not exist; create it first.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise HeatsegIOError(f"{path}: the output folder {folder} is not writable; choose another folder.")
    if path.exists() and not overwrite:
        raise HeatsegIOError(f"{path}: already exists; pass overwrite=True (CLI: --overwrite) to replace it.")
    return path


def atomic_write(path, write, *, overwrite=False):
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it to ``path``.

    If ``write`` raises, the temporary file is removed and ``path`` is untouched.
    """
    path = _check_target(path, overwrite)
    kind = "".join(Path(path).suffixes[-2:]) if path.name.lower().endswith(".nii.gz") else path.suffix
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{kind}", dir=path.parent)
    except OSError as exc:
        raise HeatsegIOError(
            f"{path}: cannot create a file in {path.parent} ({exc.strerror or exc}); choose another folder."
        ) from exc
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes it private; give it a normal file's mode
        if path.exists() and not overwrite:  # appeared while we were writing
            raise HeatsegIOError(f"{path}: appeared while writing; not replaced (pass overwrite=True).")
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise HeatsegIOError(f"{path}: cannot replace it ({exc.strerror or exc}); choose another path.") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_labels(path, labels, *, spacing=None, overwrite=False, like=None):
    """Write a label image atomically, in the format given by ``path``'s suffix.

    Parameters
    ----------
    path : str or Path
        ``.tif``/``.tiff`` (zlib-compressed, spacing in the ``spacing_zyx`` metadata),
        ``.npy``, ``.nii``/``.nii.gz`` or ``.png`` (2D labels up to 65535).
    labels : ndarray
        The labels to write.
    spacing : sequence of float, optional
        Voxel size per axis, stored where the format allows.
    overwrite : bool
        Replace an existing file. Without it an existing file raises.
    like : str or Path, optional
        For NIfTI: copy the affine and header of this NIfTI input.

    Returns
    -------
    Path
        The written file.
    """
    kind = suffix(path)
    labels = np.asarray(labels)
    if labels.dtype == bool:
        labels = labels.astype(np.uint8)
    if kind in _READ_ONLY:
        raise HeatsegIOError(f"{path}: {kind} cannot hold labels exactly; write them as .png or .tif.")
    if kind == ".png":
        if labels.ndim != 2 or labels.min() < 0 or labels.max() > 65535:
            raise HeatsegIOError(
                f"{path}: png holds 2D labels from 0 to 65535, got shape {labels.shape} with values "
                f"{labels.min()}..{labels.max()}; write them as .tif or .npy.")
        labels = labels.astype(np.uint8 if labels.max() < 256 else np.uint16)

    def write(tmp):
        if kind in (".tif", ".tiff"):
            import tifffile

            meta = {"spacing_zyx": [float(s) for s in spacing]} if spacing is not None else None
            tifffile.imwrite(tmp, labels, compression="zlib", metadata=meta, photometric="minisblack")
        elif kind == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, labels, allow_pickle=False)
        elif kind == ".png":
            import imageio.v3 as iio

            iio.imwrite(tmp, labels, extension=".png")
        else:
            import nibabel

            data = labels.transpose(tuple(range(labels.ndim))[::-1])
            if like is not None and suffix(like) in (".nii", ".nii.gz"):
                ref = nibabel.load(str(like))
                image = nibabel.Nifti1Image(data, ref.affine, ref.header)
                image.set_data_dtype(data.dtype)
            else:
                affine = np.eye(4)
                if spacing is not None:
                    affine[: labels.ndim, : labels.ndim] = np.diag(spacing[::-1])
                image = nibabel.Nifti1Image(data, affine)
            nibabel.save(image, str(tmp))

    return atomic_write(path, write, overwrite=overwrite)
