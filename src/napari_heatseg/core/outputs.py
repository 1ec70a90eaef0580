"""Writing outputs safely: atomic files and zarr stores, outputs apart from inputs.

- :func:`atomic_write` and :func:`write_labels` write to a temporary file beside the target
  and rename it into place only when complete; :func:`write_zarr` does the same for a zarr
  store and sets a completion marker (:data:`ZARR_COMPLETE`) that :func:`zarr_is_complete`
  checks. Nothing half-written ever carries an output's name, and an existing output is
  replaced (with ``overwrite``) only by a complete new one.
- Temporary files are named ``.{target}.{pid}-{random}.part{ext}``: :func:`remove_stale_parts`
  removes those of killed runs, never the work in progress of a live one.
- :func:`check_separate` refuses, before any work, an output that is, contains or lies
  inside an input (the folder lock that keeps a second run out of an output folder is
  :func:`napari_heatseg.core.folder_lock.folder_lock`).

Every failure is a :class:`~napari_heatseg.core.io.HeatsegIOError` (an ``OSError``) whose
message names the file, the problem and the fix.
"""

import os
import re
import tempfile
from pathlib import Path

import numpy as np

from .io import _ONE_FILE, _READ_ONLY, DICOM, MEDICAL, HeatsegIOError, suffix
from .medical_io import Geometry, read_geometry, simpleitk, write_medical

__all__ = ["ZARR_COMPLETE", "atomic_write", "check_labels_format", "check_separate", "check_target",
           "check_zarr_target", "describe_os_error", "remove_stale_parts", "write_labels", "write_zarr",
           "zarr_is_complete"]

_UMASK = os.umask(0o022)
os.umask(_UMASK)


def check_target(path, overwrite=False):
    """The output file ``path``, checked before the work: its folder exists and is writable, and it
    does not exist unless ``overwrite``."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise HeatsegIOError(f"{path}: the output folder {folder} does not exist; create it first.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise HeatsegIOError(f"{path}: the output folder {folder} is not writable; choose another folder.")
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise HeatsegIOError(f"{path}: already exists; pass overwrite=True (CLI: --overwrite) to replace it.")
    return path


# ------------------------------------------------------------------------ temporary files
#
# Every temporary file or store is written beside its target as ``.{target name}.{pid}-{random}.part{ext}``,
# so that the writer of a leftover is known: a part whose process is gone is stale, one whose
# process runs is another run's work in progress and is never touched.

_PART = re.compile(r"^\.(?P<target>.+)\.(?P<token>[A-Za-z0-9_-]+)\.part(\.|$)")  # older runs: no pid


def _part_prefix(path):
    return f".{Path(path).name}.{os.getpid()}-"


def _pid_alive(pid):
    """Whether process ``pid`` runs on this machine (unknown elsewhere than POSIX: assume it does)."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


def remove_stale_parts(folder, names, *, every=False):
    """Remove the temporary files and stores left beside ``names`` in ``folder`` by killed runs.

    Parameters
    ----------
    folder : str or Path
        The output folder.
    names : iterable of str
        Target names (``img0.tif``, ``img0.heatseg.json``, ``labels.zarr``).
    every : bool
        Remove every part of these targets, whoever wrote it (the caller holds the folder's
        :func:`~napari_heatseg.core.folder_lock.folder_lock`, so no other run writes
        there); otherwise only the parts whose writing process is gone.

    Returns
    -------
    list of str
        The names removed.
    """
    import shutil

    names = set(names)
    removed = []
    for entry in Path(folder).iterdir():
        part = _PART.match(entry.name)
        if part is None or part["target"] not in names:
            continue
        pid = part["token"].split("-", 1)[0]
        if not every and not (pid.isdigit() and not _pid_alive(int(pid))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry.name)
    return sorted(removed)


def atomic_write(path, write, *, overwrite=False):
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it to ``path``.

    If ``write`` raises, the temporary file is removed and ``path`` is untouched. An
    ``OSError`` while writing (a full disk, say) becomes a :class:`HeatsegIOError` naming ``path``.
    """
    path = check_target(path, overwrite)
    kind = "".join(Path(path).suffixes[-2:]) if path.name.lower().endswith(".nii.gz") else path.suffix
    try:
        fd, tmp = tempfile.mkstemp(prefix=_part_prefix(path), suffix=f".part{kind}", dir=path.parent)
    except OSError as exc:
        raise HeatsegIOError(
            f"{path}: cannot create a file in {path.parent} ({exc.strerror or exc}); choose another folder."
        ) from exc
    os.close(fd)
    try:
        try:
            write(Path(tmp))
        except HeatsegIOError:
            raise
        except OSError as exc:
            raise HeatsegIOError(describe_os_error(exc, path, "cannot write it")) from exc
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


def describe_os_error(exc, path=None, doing=None):
    """One line for an ``OSError``: the file, what was being done, what went wrong and what to do."""
    import errno

    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        remedy = "free some space or choose a folder on another disk."
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        remedy = "choose a folder you can write to."
    elif exc.errno == errno.ENOENT:
        remedy = "check the path."
    else:
        remedy = "check the path and try again."
    path = path if path is not None else exc.filename
    reason = exc.strerror or str(exc) or type(exc).__name__
    what = f"{doing} ({reason})" if doing else reason
    return f"{path}: {what}; {remedy}" if path is not None else f"{what}; {remedy}"


def check_labels_format(path):
    """The suffix of the labels file ``path``, or raise if heatseg does not write labels in that format."""
    kind = suffix(path, labels=True)
    if kind in _READ_ONLY:
        raise HeatsegIOError(f"{path}: {kind} cannot hold labels exactly; write them as .png or .tif.")
    if kind in _ONE_FILE:
        raise HeatsegIOError(
            f"{path}: {kind} keeps its voxels in a second file, which cannot be written and renamed into place "
            f"with the header as one; write the labels as {_ONE_FILE[kind]} (the same format in one file).")
    if kind in DICOM:
        raise HeatsegIOError(
            f"{path}: heatseg does not write DICOM; write the labels as .nrrd or .nii.gz, which keep the series' "
            f"origin, direction and spacing, so that they open aligned with it in Slicer and ITK-SNAP.")
    return kind


def _input_geometry(like, kind):
    """The geometry of ``like`` to write labels of suffix ``kind`` with, or None: that of a NRRD,
    MetaImage or DICOM input (or the :class:`~napari_heatseg.core.medical_io.Geometry` given),
    and of a NIfTI input for NRRD and MetaImage labels (NIfTI labels copy its header instead)."""
    if isinstance(like, Geometry):
        return like
    copied = (*MEDICAL, *DICOM, *((".nii", ".nii.gz") if kind in MEDICAL else ()))
    if like is not None and suffix(like) in copied:
        return read_geometry(like)
    return None


def write_labels(path, labels, *, spacing=None, overwrite=False, like=None):
    """Write a label image atomically, in the format given by ``path``'s suffix.

    Parameters
    ----------
    path : str or Path
        ``.tif``/``.tiff`` (zlib-compressed, spacing in the ``spacing_zyx`` metadata),
        ``.npy``, ``.nii``/``.nii.gz``, ``.nrrd`` or ``.mha`` (compressed, with origin,
        direction and spacing; needs SimpleITK) or ``.png`` (2D labels up to 65535).
    labels : ndarray
        The labels to write, in array (z, y, x) order.
    spacing : sequence of float, optional
        Voxel size per axis, stored where the format allows (when ``like`` gives none).
    overwrite : bool
        Replace an existing file. Without it an existing file raises.
    like : str, Path or Geometry, optional
        The input the labels belong to. NIfTI output: the affine and header of a NIfTI
        input are copied; NIfTI, NRRD or MetaImage output: the origin, direction and
        spacing of a NRRD, MetaImage or DICOM input (NRRD, MetaImage: of a NIfTI input
        too), or the :class:`~napari_heatseg.core.medical_io.Geometry` given, so that the
        labels open aligned with it in Slicer and ITK-SNAP. Its spacing wins over
        ``spacing``.

    Returns
    -------
    Path
        The written file.
    """
    kind = check_labels_format(path)
    labels = np.asarray(labels)
    if labels.dtype == bool:
        labels = labels.astype(np.uint8)
    if kind == ".png":
        if labels.ndim != 2 or labels.min() < 0 or labels.max() > 65535:
            raise HeatsegIOError(
                f"{path}: png holds 2D labels from 0 to 65535, got shape {labels.shape} with values "
                f"{labels.min()}..{labels.max()}; write them as .tif or .npy.")
        labels = labels.astype(np.uint8 if labels.max() < 256 else np.uint16)
    geometry = _input_geometry(like, kind) if kind in (*MEDICAL, ".nii", ".nii.gz") else None
    if kind in MEDICAL:
        simpleitk(path, "write")  # its absence is said about path, not about the temporary file
        geometry = geometry or Geometry.from_spacing(spacing, labels.ndim)
    if geometry is not None and len(geometry.spacing) != labels.ndim:
        raise ValueError(f"{path}: the labels have {labels.ndim} axes (shape {labels.shape}) but the geometry of "
                         f"{like} has {len(geometry.spacing)}; give labels of the image's spatial shape.")

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
        elif kind in MEDICAL:
            write_medical(tmp, labels, geometry)
        else:
            import nibabel

            data = labels.transpose(tuple(range(labels.ndim))[::-1])
            if geometry is not None:  # a NRRD, MetaImage or DICOM input's geometry, in NIfTI's RAS terms
                image = nibabel.Nifti1Image(data, geometry.nifti_affine())
            elif like is not None and suffix(like) in (".nii", ".nii.gz"):
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


# ----------------------------------------------------------------------- inputs vs outputs

def check_separate(outputs, inputs):
    """Refuse, before any work, an output that is, contains or lies inside an input.

    Parameters
    ----------
    outputs, inputs : iterable of (str, path)
        ``(name, path)`` pairs; the names are the interface's words for them (``"-o"``,
        ``"--start"``, ``"out"``, ``"image"``) and appear in the message. Links are followed:
        a link to an input, placed where an output goes, is that input.

    Raises
    ------
    HeatsegIOError
        Naming the output, the input and how they overlap.
    """
    inputs = [(name, Path(path), Path(path).resolve()) for name, path in inputs if path is not None]
    for out_name, out_path in outputs:
        out = Path(out_path).resolve()
        for in_name, in_path, resolved in inputs:
            if out == resolved:
                how = "is a link to" if Path(out_path).is_symlink() else "is"
            elif resolved.is_relative_to(out):
                how = "contains"
            elif out.is_relative_to(resolved):
                how = "lies inside"
            else:
                continue
            raise HeatsegIOError(
                f"{out_name} {out_path} {how} the {in_name} file {in_path}; heatseg never replaces its "
                f"inputs or writes into them. Choose an output outside them.")


# ---------------------------------------------------------------------------- zarr output

ZARR_COMPLETE = "heatseg_complete"  # store attribute set once every chunk is written


def check_zarr_target(path, *, overwrite=False, inputs=()):
    """Refuse a zarr output that exists (unless ``overwrite``) or overlaps an input; before the work.

    Parameters
    ----------
    path : str or Path
        The output store.
    overwrite : bool
        Whether an existing store may be replaced (it is, only once the new one is complete).
    inputs : iterable of (str, object)
        ``(name, value)`` of the inputs; the ones given as paths are checked with
        :func:`check_separate`.
    """
    path = Path(path)
    check_separate([("out", path)], [(name, value) for name, value in inputs if isinstance(value, (str, Path))])
    if (path.exists() or path.is_symlink()) and not overwrite:
        state = "" if zarr_is_complete(path) else " but is incomplete (no completion marker: an interrupted write?)"
        raise HeatsegIOError(f"{path} already exists{state}; pass overwrite=True (CLI: --overwrite) to replace it.")
    if not path.parent.is_dir():
        raise HeatsegIOError(f"{path}: the output folder {path.parent} does not exist; create it first.")
    return path


def zarr_is_complete(path):
    """Whether the zarr store ``path`` was written to the end (it holds the completion marker)."""
    import zarr

    try:
        return zarr.open_array(str(path), mode="r").attrs.get(ZARR_COMPLETE) is True
    except Exception:  # missing, not a zarr array, unreadable: not a complete result
        return False


def write_zarr(path, array, *, overwrite=False):
    """Write a dask array to the zarr store ``path`` atomically.

    The chunks go to a temporary store beside ``path``; the completion marker
    (attribute ``heatseg_complete``) is set once all are written; then the store is renamed
    to ``path``. An interrupted or failed write leaves ``path`` as it was; an existing
    ``path`` (``overwrite=True``) is moved aside until the new store is in place, and
    kept there (as ``.{name}.{pid}.previous.zarr``) if the process dies in that instant.
    """
    import shutil

    import dask.array as da
    import zarr

    path = check_zarr_target(path, overwrite=overwrite)
    remove_stale_parts(path.parent, [path.name])
    tmp = Path(tempfile.mkdtemp(prefix=_part_prefix(path), suffix=".part.zarr", dir=path.parent))
    try:
        try:
            da.to_zarr(array, str(tmp), overwrite=True)
            zarr.open_array(str(tmp), mode="r+").attrs[ZARR_COMPLETE] = True
        except OSError as exc:
            raise HeatsegIOError(describe_os_error(exc, path, "cannot write it")) from exc
        previous = path.with_name(f".{path.name}.{os.getpid()}.previous.zarr")
        replaced = path.exists() or path.is_symlink()
        if replaced:
            os.replace(path, previous)
        try:
            os.replace(tmp, path)
        except BaseException:
            if replaced:
                os.replace(previous, path)
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if replaced:
        shutil.rmtree(previous, ignore_errors=True) if previous.is_dir() else previous.unlink(missing_ok=True)
    return path
