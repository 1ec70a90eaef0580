"""napari reader for NRRD, MetaImage and DICOM series, with the voxel spacing as the layer's scale.

napari's own reader opens ``.nrrd`` and ``.mha`` through imageio without their spacing (an
anisotropic MRI looks squashed) and a ``.dcm`` file as one slice. This reader is a thin layer
over :func:`napari_heatseg.core.medical_io.read_medical`; a ``.dcm`` file opens the whole
series it belongs to. It does not claim folders: napari would then ask which reader to use for
every folder opened (zarr stores, say). It gives one Image layer with
``scale = spacing`` (z, y, x) and, in ``metadata["geometry"]``, the origin, direction and
spacing (:meth:`~napari_heatseg.core.medical_io.Geometry.as_dict`), so that labels drawn on
it can be written back aligned with the file::

    from napari_heatseg.core.medical_io import Geometry
    from napari_heatseg.core.outputs import write_labels

    write_labels("labels.nrrd", labels_layer.data, like=Geometry(**image_layer.metadata["geometry"]))
"""

from pathlib import Path

__all__ = ["get_reader", "read_layers"]


def get_reader(path):
    """npe2 ``get_reader``: :func:`read_layers` for a NRRD, MetaImage or DICOM (``.dcm``) file, None
    for anything else (napari then tries its other readers)."""
    from napari_heatseg.core.io import DICOM, MEDICAL

    if isinstance(path, (list, tuple)):
        if len(path) != 1:  # several files: not one volume with one geometry
            return None
        path = path[0]
    readable = str(path).lower().endswith((*MEDICAL, *DICOM[1:])) and Path(path).is_file()
    return read_layers if readable else None


def read_layers(path):
    """The layer data of a NRRD or MetaImage file, or of the DICOM series a ``.dcm`` file belongs
    to: ``[(image, kwargs, "image")]``."""
    from napari_heatseg.core.io import stem
    from napari_heatseg.core.medical_io import read_medical

    path = Path(path[0] if isinstance(path, (list, tuple)) else path)
    image, geometry = read_medical(path)
    name = path.parent.name if path.suffix.lower() == ".dcm" else stem(path)  # a series: its folder's name
    kwargs = {"name": name, "scale": geometry.spacing,
              "metadata": {"geometry": geometry.as_dict(), "source": str(path)}}
    if image.ndim > len(geometry.spacing):  # several components per voxel, last
        kwargs.update({"rgb": True} if image.shape[-1] in (3, 4) else {"channel_axis": image.ndim - 1})
    return [(image, kwargs, "image")]
