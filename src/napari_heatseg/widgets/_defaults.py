"""Defaults the widget chooses from the layers: the start, the reference, the slice shown, the metrics.

A sample's ground truth carries ``metadata['heatseg_reference']`` and its start
``metadata['heatseg_scope']`` (see :mod:`napari_heatseg._sample_data`). A reference with
many label ids is read as an instance labelling (one id per object): it is compared
foreground against foreground, and object by object with
:func:`napari_heatseg.core.metrics.instance_scores`.
"""

import numpy as np

__all__ = ["INSTANCE_MIN_IDS", "go_to_marked_slice", "is_instance_reference", "is_sample_reference",
           "is_sample_start", "marked_slice", "metrics_text"]

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


def metrics_text(reference, result, *, spacing, foreground_only=False):
    """The metrics box: per-label scores, and object scores against an instance reference.

    Parameters
    ----------
    reference, result : (M, N[, P]) ndarray of int
        The reference labels and the result (the preview).
    spacing : tuple of float
        Voxel size per axis, for the distances.
    foreground_only : bool
        Score "any label" against "any label" in the per-label table.

    Returns
    -------
    str
        Markdown tables: :func:`napari_heatseg.core.metrics.format_table` of the per-label
        scores, then, if :func:`is_instance_reference`, the objects in the reference and
        found, F1@0.5, mean AP and count error of
        :func:`napari_heatseg.core.metrics.instance_scores` (on the labels as they are).
    """
    from napari_heatseg.core import metrics

    truth, test = reference, result
    if foreground_only:
        truth, test = (truth > 0).astype(np.uint8), (test > 0).astype(np.uint8)
    table = metrics.format_table(metrics.compare(truth, test, spacing=spacing))
    if not is_instance_reference(reference):
        return table
    scores = metrics.instance_scores(reference, result)
    return (f"{table}\n\n| objects ref | objects found | F1@0.5 | mean AP | count error |\n|---|---|---|---|---|\n"
            f"| {scores['n_true']} | {scores['n_test']} | {scores['f1']:.3f} | {scores['mean_ap']:.3f} "
            f"| {scores['count_error']:+d} |")
