"""Defaults the widget chooses from the layers: the start, the reference, the slice shown.

A sample's ground truth carries ``metadata['heatseg_reference']`` and its start
``metadata['heatseg_scope']`` (see :mod:`napari_heatseg._sample_data`).
"""

import numpy as np

__all__ = ["go_to_marked_slice", "is_sample_reference", "is_sample_start", "marked_slice"]


def is_sample_reference(layer):
    return bool(getattr(layer, "metadata", {}).get("heatseg_reference"))


def is_sample_start(layer):
    return "heatseg_scope" in getattr(layer, "metadata", {})


def marked_slice(labels):
    """Index along axis 0 of the slice with the most marked (nonzero) voxels."""
    labels = np.asarray(labels)
    return int(np.argmax(np.count_nonzero(labels.reshape(labels.shape[0], -1), axis=1)))


def go_to_marked_slice(viewer, layer):
    """Show the slice of the 3D Labels ``layer`` with the most marks (its axis 0)."""
    if layer.ndim != 3 or not np.any(layer.data):
        return
    index = marked_slice(layer.data)
    world = layer.data_to_world([index, 0, 0])
    viewer.dims.set_point(viewer.dims.ndim - layer.ndim, float(world[0]))
