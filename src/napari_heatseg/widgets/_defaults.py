"""Defaults the widget chooses from the layers: the start, the reference, the slice shown, the metrics.

A sample's ground truth carries ``metadata['heatseg_reference']`` and its start
``metadata['heatseg_scope']`` (see :mod:`napari_heatseg._sample_data`). A reference with
many label ids is read as an instance labelling (one id per object): it is compared
foreground against foreground, and object by object with
:func:`napari_heatseg.core.metrics.instance_scores`.
"""

import numpy as np

__all__ = ["INSTANCE_MIN_IDS", "go_to_marked_slice", "is_instance_reference", "is_sample_reference",
           "is_sample_start", "marked_slice", "metrics_rows"]

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


def metrics_rows(reference, result, *, spacing, foreground_only=False):
    """The metrics of the result against the reference, for the metrics table.

    Parameters
    ----------
    reference, result : (M, N[, P]) ndarray of int
        The reference labels and the result (the preview).
    spacing : tuple of float
        Voxel size per axis, for the distances.
    foreground_only : bool
        Score "any label" against "any label" in the per-label rows.

    Returns
    -------
    columns : list of str
        Column titles (those of :func:`napari_heatseg.core.metrics.format_table`).
    rows : list of list of str
        One row per label of :func:`napari_heatseg.core.metrics.compare`, formatted.
    objects : str
        If :func:`is_instance_reference`: the objects in the reference and found, F1@0.5,
        mean AP and count error of :func:`napari_heatseg.core.metrics.instance_scores` (on
        the labels as they are); else "".
    """
    from napari_heatseg.core import metrics

    truth, test = reference, result
    if foreground_only:
        truth, test = (truth > 0).astype(np.uint8), (test > 0).astype(np.uint8)
    scores = metrics.compare(truth, test, spacing=spacing)
    columns = [title for _, title, _ in metrics._COLUMNS]
    rows = [[fmt.format(row[key]) for key, _, fmt in metrics._COLUMNS] for row in scores]
    if not is_instance_reference(reference):
        return columns, rows, ""
    found = metrics.instance_scores(reference, result)
    objects = (f"objects: {found['n_true']} in the reference, {found['n_test']} found; F1@0.5 {found['f1']:.3f}, "
               f"mean AP {found['mean_ap']:.3f}, count error {found['count_error']:+d}")
    return columns, rows, objects
