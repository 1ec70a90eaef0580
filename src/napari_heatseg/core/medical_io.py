"""Medical volumes through SimpleITK: NRRD, MetaImage and DICOM series, with their geometry.

ITK's readers and writers carry a volume's geometry (origin, direction cosines, spacing) the
way Slicer and ITK-SNAP read it, so heatseg reads these formats with SimpleITK, an optional
dependency (``pip install "napari-heatseg[medical]"``), imported only when such a file is
read or written. Files: ``.nrrd``/``.nhdr`` (NRRD), ``.mha``/``.mhd`` (MetaImage), and DICOM
series, named by the folder holding one or by any one of its ``.dcm`` files (the slices
sorted by GDCM along the slice normal, as Slicer does).

Axis order
----------
ITK indexes a volume as (x, y, z) = (column, row, plane); the array heatseg works on (what
``SimpleITK.GetArrayFromImage`` returns) is (z, y, x). :class:`Geometry` holds everything in
the array's order: with ``R`` the axis reversal, ``spacing = R s``, ``origin = R o`` and
``direction = R D R`` (``D`` reversed in rows and columns), where ``s``, ``o`` and ``D`` are
ITK's. The physical point (ITK's LPS coordinates, reversed to z, y, x) of the voxel at array
index ``i`` is then

    p = origin + direction @ (spacing * i),

which is also napari's convention for a layer's world coordinates.
"""

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .io import DICOM, HeatsegIOError, suffix

__all__ = ["Geometry", "holds_dicom", "medical_shape", "read_geometry", "read_medical", "simpleitk", "write_medical"]

INSTALL = 'pip install "napari-heatseg[medical]"'


@dataclass(frozen=True)
class Geometry:
    """Where a volume's voxels lie in the scanner's space, in array (z, y, x) order.

    Attributes
    ----------
    spacing : tuple of float
        Voxel size per array axis (physical units, mm for medical files).
    origin : tuple of float
        Physical position of the voxel at index 0 (ITK's LPS point, reversed).
    direction : tuple of tuple of float
        ``direction[a][b]``: component ``a`` of the physical direction of array axis ``b``
        (ITK's direction matrix reversed in rows and columns); the identity for an axis-
        aligned volume.
    """

    spacing: tuple
    origin: tuple
    direction: tuple

    def __post_init__(self):  # tuples of floats, whatever sequences were given (lists from JSON, arrays)
        ndim = len(self.spacing)
        direction = np.asarray(self.direction, dtype=float)
        if len(self.origin) != ndim or direction.shape != (ndim, ndim):
            raise ValueError(f"a geometry needs one spacing and origin value per axis and an {ndim}x{ndim} direction; "
                             f"got {ndim} spacings, {len(self.origin)} origin values and a direction of shape "
                             f"{direction.shape}.")
        object.__setattr__(self, "spacing", tuple(float(s) for s in self.spacing))
        object.__setattr__(self, "origin", tuple(float(o) for o in self.origin))
        object.__setattr__(self, "direction", tuple(tuple(float(v) for v in row) for row in direction))

    @classmethod
    def from_spacing(cls, spacing, ndim):
        """Axis-aligned geometry at the origin: what a file without geometry (tif, npy) implies."""
        return cls(spacing if spacing is not None else (1.0,) * ndim, (0.0,) * ndim, np.eye(ndim))

    @classmethod
    def _from_itk(cls, item):
        """From a SimpleITK ``Image`` or an ``ImageFileReader`` that read the file's information."""
        ndim = item.GetDimension()
        return cls(item.GetSpacing()[::-1], item.GetOrigin()[::-1],
                   np.reshape(item.GetDirection(), (ndim, ndim))[::-1, ::-1])

    def _to_itk(self, image):
        """Set this geometry on the SimpleITK ``image`` (axes back to ITK's x, y, z)."""
        image.SetSpacing(self.spacing[::-1])
        image.SetOrigin(self.origin[::-1])
        image.SetDirection(tuple(np.asarray(self.direction)[::-1, ::-1].ravel()))
        return image

    def as_dict(self):
        """Plain lists (JSON, napari ``layer.metadata``); ``Geometry(**g.as_dict())`` gives it back."""
        return {"spacing": list(self.spacing), "origin": list(self.origin),
                "direction": [list(row) for row in self.direction]}

    def nifti_affine(self):
        """The NIfTI affine (RAS, x-y-z voxel order, 4x4) that puts the voxels where this geometry does.

        ITK is LPS and NIfTI RAS, so the first two physical axes change sign:
        ``A = diag(-1, -1, 1) [D diag(s) | o]`` in ITK's x, y, z order. A 2D geometry lies in
        the plane z = 0.
        """
        ndim = len(self.spacing)
        matrix, origin = np.eye(3), np.zeros(3)
        itk_direction = np.asarray(self.direction)[::-1, ::-1]
        matrix[:ndim, :ndim] = itk_direction * np.asarray(self.spacing[::-1])
        origin[:ndim] = self.origin[::-1]
        affine = np.eye(4)
        affine[:3, :3], affine[:3, 3] = matrix, origin
        return np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine


def simpleitk(path, doing="read"):
    """The SimpleITK module, imported now; without it, a :class:`~napari_heatseg.core.io.HeatsegIOError`
    naming ``path`` and the extra to install."""
    try:
        import SimpleITK
    except ImportError:
        kind = suffix(path)
        kind = "a DICOM series" if kind in DICOM else f"{kind} files"
        raise HeatsegIOError(f"{path}: heatseg needs SimpleITK to {doing} {kind}; install it with "
                             f"`{INSTALL}`.") from None
    return SimpleITK


def _itk_reason(exc):
    """The line of an ITK exception that says what went wrong (they come with C++ file names)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    error = next((line for line in lines if "ERROR:" in line), lines[-1] if lines else type(exc).__name__)
    return re.sub(r"^.*?ERROR:\s*(\w+\(0x[0-9a-fA-F]+\):\s*)?", "", error)


@contextlib.contextmanager
def _itk_errors(path, doing):
    """ITK's ``RuntimeError`` as a :class:`~napari_heatseg.core.io.HeatsegIOError` naming the file."""
    try:
        yield
    except RuntimeError as exc:
        raise HeatsegIOError(f"{path}: cannot {doing} ({_itk_reason(exc)}); check that it is a complete, "
                             f"valid file, re-export or copy it again.") from exc


def holds_dicom(folder):
    """Whether ``folder`` is a folder with ``.dcm`` files in it (a quick test, no file is opened)."""
    folder = Path(folder)
    return folder.is_dir() and any(p.suffix.lower() == ".dcm" and p.is_file() for p in folder.iterdir())


def _is_series(path):
    return suffix(path) in DICOM


def _series_files(sitk, path):
    """The files of a DICOM series in slice order (GDCM's sort along the normal): of the one series in
    the folder ``path``, or of the series the file ``path`` belongs to, in its folder."""
    path = Path(path)
    if not path.is_dir():
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        if not reader.HasMetaDataKey("0020|000e"):
            raise HeatsegIOError(f"{path}: has no series instance UID (0020,000e), so its series cannot be found; "
                                 f"give the folder that holds the series.")
        return sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(path.parent),
                                                              reader.GetMetaData("0020|000e").strip(" \0"))
    folder = path
    warnings_shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)  # "No Series were found" is said below, once
    try:
        series = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(warnings_shown)
    if not series:
        raise HeatsegIOError(f"{folder}: is a folder without a DICOM series; give a folder of DICOM files, or an "
                             f"image file.")
    if len(series) > 1:
        raise HeatsegIOError(f"{folder}: holds {len(series)} DICOM series ({', '.join(series[:3])}"
                             f"{', ...' if len(series) > 3 else ''}); give one file of the series you mean, or move "
                             f"each series into its own folder.")
    return sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series[0])


def read_medical(path):
    """Read a NRRD or MetaImage file, or a DICOM series, with its geometry.

    Parameters
    ----------
    path : str or Path
        A ``.nrrd``, ``.nhdr``, ``.mha`` or ``.mhd`` file; or a DICOM series: a folder holding
        one, or any one of its ``.dcm`` files (the series is read from the file's folder).

    Returns
    -------
    image : (Z, Y, X[, C]) or (Y, X[, C]) ndarray
        The voxels in array order, with the file's dtype; multi-component pixels (RGB)
        last.
    geometry : Geometry
        Spacing, origin and direction in the array's (z, y, x) order.

    Raises
    ------
    HeatsegIOError
        SimpleITK is not installed, the folder holds no series or several, or a file is
        unreadable.
    """
    path = Path(path)
    sitk = simpleitk(path)
    series = _is_series(path)
    with _itk_errors(path, "read this DICOM series" if series else "read this file"):
        if series:
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(_series_files(sitk, path))
            image = reader.Execute()
        else:
            image = sitk.ReadImage(str(path))
    return sitk.GetArrayFromImage(image), Geometry._from_itk(image)


def _information(sitk, path):
    """``(reader, files)``: a reader that read the header of ``path`` (a DICOM folder's first file), and
    the series' files (None for one file)."""
    files = _series_files(sitk, path) if _is_series(path) else None
    reader = sitk.ImageFileReader()
    reader.SetFileName(files[0] if files else str(path))
    reader.ReadImageInformation()
    return reader, files


def read_geometry(path):
    """The geometry of a medical file or DICOM series, from its header(s) only.

    For a DICOM series, the slice spacing is ITK's: the distance between the first and the
    last slice over the number of gaps (what :func:`read_medical` gives).
    """
    sitk = simpleitk(path)
    with _itk_errors(path, "read its header"):
        reader, files = _information(sitk, path)
        if files is None or len(files) == 1:
            return Geometry._from_itk(reader)
        ends = sitk.ImageSeriesReader()  # two slices: the series' origin, direction and full extent
        ends.SetFileNames([files[0], files[-1]])
        geometry = Geometry._from_itk(ends.Execute())
    return Geometry((geometry.spacing[0] / (len(files) - 1), *geometry.spacing[1:]), geometry.origin,
                    geometry.direction)


def medical_shape(path):
    """``(shape, dtype)`` of the array :func:`read_medical` would return, from the header(s) only."""
    sitk = simpleitk(path)
    with _itk_errors(path, "read its header"):
        reader, files = _information(sitk, path)
    size = list(reader.GetSize()[::-1])
    if files is not None:
        size[0] = len(files) * size[0]  # a DICOM file holds one slice (or a few frames)
    components = reader.GetNumberOfComponents()
    one_voxel = sitk.Image([1] * reader.GetDimension(), reader.GetPixelID(), components)
    return tuple(size) + ((components,) if components > 1 else ()), sitk.GetArrayViewFromImage(one_voxel).dtype


def write_medical(path, labels, geometry):
    """Write ``labels`` (array order) to the ``.nrrd`` or ``.mha`` file ``path``, compressed, with ``geometry``
    (of as many axes as ``labels``).

    The caller (:func:`napari_heatseg.core.outputs.write_labels`) checks the labels and the
    geometry, writes to a temporary file and renames it; this only writes.
    """
    sitk = simpleitk(path, "write")
    image = geometry._to_itk(sitk.GetImageFromArray(labels, isVector=False))
    try:
        sitk.WriteImage(image, str(path), useCompression=True)
    except RuntimeError as exc:
        raise OSError(f"SimpleITK: {_itk_reason(exc)}") from exc
