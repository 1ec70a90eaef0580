"""Defaults the widget chooses from the layers: the reference, the slice shown, the metrics.

A sample's ground truth carries ``metadata['heatseg_reference']`` and its start
``metadata['heatseg_scope']`` (see :mod:`napari_heatseg._sample_data`). A reference with
many label ids is read as an instance labelling (one id per object): it is compared
foreground against foreground, and object by object with
:func:`napari_heatseg.core.metrics.instance_scores`.
"""

import numpy as np

__all__ = ["INSTANCE_MIN_IDS", "go_to_marked_slice", "instance_table", "is_instance_reference",
           "is_sample_reference", "is_sample_start", "marked_slice"]

#: A reference with more label ids than this is an instance labelling (a few ids are classes).
INSTANCE_MIN_IDS = 5


def is_sample_reference(layer):
    return bool(getattr(layer, "metadata", {}).get("heatseg_reference"))


def is_sample_start(layer):
    return "heatseg_scope" in getattr(layer, "metadata", {})


def is_instance_reference(labels):
    """True if ``labels`` holds more than :data:`INSTANCE_MIN_IDS` nonzero ids."""
    ids = np.unique(np.asarray(labels))
    return int(np.count_nonzero(ids)) > INSTANCE_MIN_IDS


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


def instance_table(reference, result):
    """Object-level scores of ``result`` against the instance ``reference``, as a Markdown table."""
    from napari_heatseg.core.metrics import instance_scores

    scores = instance_scores(reference, result)
    return ("| objects ref | objects found | F1@0.5 | mean AP | count error |\n|---|---|---|---|---|\n"
            f"| {scores['n_true']} | {scores['n_test']} | {scores['f1']:.3f} | {scores['mean_ap']:.3f} "
            f"| {scores['count_error']:+d} |")
