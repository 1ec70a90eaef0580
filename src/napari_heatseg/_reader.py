"""napari reader for NRRD, MetaImage and DICOM series, with the voxel spacing as the layer's scale.

napari's own reader opens ``.nrrd`` and ``.mha`` through imageio without their spacing (an
anisotropic MRI looks squashed) and does not read DICOM series. This reader is a thin layer
over :func:`napari_heatseg.core.medical_io.read_medical`: one Image layer with
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
    """npe2 ``get_reader``: :func:`read_layers` for a NRRD or MetaImage file or a folder of ``.dcm``
    files, None for anything else (napari then tries its other readers)."""
    from napari_heatseg.core.io import MEDICAL
    from napari_heatseg.core.medical_io import holds_dicom

    if isinstance(path, (list, tuple)):
        if len(path) != 1:  # a stack of several files: not one volume with a geometry
            return None
        path = path[0]
    return read_layers if str(path).lower().endswith(MEDICAL) or holds_dicom(path) else None


def read_layers(path):
    """The layer data of a NRRD or MetaImage file or a DICOM series: ``[(image, kwargs, "image")]``."""
    from napari_heatseg.core.io import stem
    from napari_heatseg.core.medical_io import read_medical

    path = Path(path[0] if isinstance(path, (list, tuple)) else path)
    image, geometry = read_medical(path)
    kwargs = {"name": stem(path), "scale": geometry.spacing,
              "metadata": {"geometry": geometry.as_dict(), "source": str(path)}}
    if image.ndim > len(geometry.spacing):  # several components per voxel, last
        kwargs.update({"rgb": True} if image.shape[-1] in (3, 4) else {"channel_axis": image.ndim - 1})
    return [(image, kwargs, "image")]
