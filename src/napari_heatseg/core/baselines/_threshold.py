"""Thresholding baselines: global Otsu, multi-Otsu and local (adaptive) thresholds.

They work on the grey image (luminance for RGB). Which class belongs to which label
is read from the seeds (see :meth:`Task.assign_classes`): the side (bright or dark
foreground) is never assumed.
"""

import numpy as np
from skimage import filters

from ._task import Bound, Task, baseline, physical_sizes

BINS = Bound(2, whole=True)

__all__ = ["threshold_local", "threshold_multiotsu", "threshold_otsu"]


@baseline(nbins=BINS)
def threshold_otsu(prepared, scope=None, *, nbins=256):
    """Otsu's global threshold (:func:`skimage.filters.threshold_otsu`).

    Parameters
    ----------
    nbins : int
        Histogram bins.
    """
    task = Task(prepared, scope)
    grey = task.grey
    values = grey[task.valid].astype(np.float64)  # bins finer than float32 resolves
    classes = (grey > filters.threshold_otsu(values, nbins=nbins)).astype(np.intp)
    return task.finish(task.assign_classes(classes, 2))


@baseline(classes=Bound(2, whole=True, optional=True), nbins=BINS)
def threshold_multiotsu(prepared, scope=None, *, classes=None, nbins=256):
    """Multi-Otsu thresholds (:func:`skimage.filters.threshold_multiotsu`).

    Parameters
    ----------
    classes : int, optional
        Number of intensity classes; default: one per label plus one for the
        background (at least 3). Never more than the image's distinct values.
    nbins : int
        Histogram bins.
    """
    task = Task(prepared, scope)
    if classes is None:
        classes = max(3, prepared.n_labels + 1)
    grey = task.grey
    values = grey[task.valid].astype(np.float64)
    classes = min(classes, np.unique(values).size)  # an image with 2 values has 2 classes
    thresholds = filters.threshold_multiotsu(values, classes=classes, nbins=nbins)
    class_map = np.digitize(grey, thresholds).astype(np.intp)
    return task.finish(task.assign_classes(class_map, classes))


@baseline(block_size=Bound(3, whole=True), offset=Bound(0, high=1))
def threshold_local(prepared, scope=None, *, block_size=35, method="gaussian", offset=0.05):
    """Local (adaptive) threshold (:func:`skimage.filters.threshold_local`).

    Each pixel is compared with its neighbourhood's threshold ``t``: it is "above"
    if brighter than ``t + offset``, "below" if darker than ``t - offset``, "flat"
    otherwise (the flat class keeps noise in even background out of the answer).
    The three classes then go to the labels whose seeds fill them, so bright and
    dark objects both work.

    Parameters
    ----------
    block_size : int
        Neighbourhood size in voxels along the finest axis; along coarser axes it
        is scaled by the spacing so the neighbourhood is about as wide physically.
    method : {'gaussian', 'mean', 'median'}
        How the local threshold is computed.
    offset : float
        Margin around the local threshold, in normalised intensity units (0-0.2).
    """
    task = Task(prepared, scope)
    grey = task.grey
    sizes = physical_sizes(block_size, task.spacing)
    local = filters.threshold_local(grey, block_size=sizes, method=method)
    classes = np.digitize(grey - local, [-offset, offset]).astype(np.intp)
    return task.finish(task.assign_classes(classes, 3))
