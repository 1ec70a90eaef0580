"""Region baselines: region growing from the seeds and k-means on intensities or colours."""

import numpy as np

from ..morphology import keep_touching
from ._task import Bound, Task, baseline

__all__ = ["kmeans", "region_growing"]


@baseline(tolerance=Bound(0, strict=True), min_std=Bound(0, strict=True))
def region_growing(prepared, scope=None, *, tolerance=2.5, min_std=0.02):
    """Flood fill from each label's seeds with a tolerance learned from them.

    A pixel joins label ``k`` if it is connected to ``k``'s seeds through pixels
    whose colour lies within ``tolerance`` standard deviations of the seeds' mean
    (root-mean-square over channels, so colour images use every channel). Works in
    2D and 3D.

    Parameters
    ----------
    tolerance : float
        Allowed distance from the seeds' mean, in their standard deviations (about
        1-4; larger grows further).
    min_std : float
        Smallest standard deviation, in normalised intensity units (keeps the
        tolerance open on flat seeds).
    """
    task = Task(prepared, scope)
    masks = []
    for k in range(1, prepared.n_labels + 1):
        seed = task.seeds == k
        values = task.image[seed]
        mean = values.mean(axis=0)
        std = np.maximum(values.std(axis=0), min_std)
        distance = np.sqrt((((task.image - mean) / std) ** 2).mean(axis=-1))
        masks.append(keep_touching((distance <= tolerance) & task.valid, seed) | seed)
    return task.finish(task.combine(masks))


@baseline(n_clusters=Bound(2, whole=True, optional=True), max_samples=Bound(2, whole=True))
def kmeans(prepared, scope=None, *, n_clusters=None, max_samples=100_000, rng=0):
    """k-means clustering of the pixels' intensities or colours (:func:`scipy.cluster.vq.kmeans2`).

    Clusters are fitted on a random subsample of the valid pixels and every pixel
    joins its nearest centre; each cluster then goes to the label whose seeds
    most fill it (see :meth:`Task.assign_classes`).

    Parameters
    ----------
    n_clusters : int, optional
        Number of clusters; default one per label plus one for the background.
    max_samples : int
        Largest number of pixels used to fit the centres.
    rng : int or numpy.random.Generator
        Seed for the subsample and the k-means++ initialisation.
    """
    from scipy.cluster.vq import kmeans2, vq  # loaded by the method that needs it (60 ms)

    task = Task(prepared, scope)
    if n_clusters is None:
        n_clusters = prepared.n_labels + 1
    n_pixels = int(np.count_nonzero(task.valid))
    if n_clusters > min(n_pixels, max_samples):
        raise ValueError(f"`n_clusters` must be a whole number from 2 to the number of pixels ({n_pixels}) "
                         f"and to `max_samples` ({max_samples}), got {n_clusters!r}; give fewer clusters.")
    rng = np.random.default_rng(rng)
    pixels = task.image[task.valid].astype(np.float64)
    if len(pixels) > max_samples:
        pixels = pixels[rng.choice(len(pixels), max_samples, replace=False)]
    centres, _ = kmeans2(pixels, n_clusters, minit="++", seed=rng)
    classes, _ = vq(task.image.reshape(-1, task.image.shape[-1]).astype(np.float64), centres)
    classes = classes.reshape(task.seeds.shape).astype(np.intp)
    return task.finish(task.assign_classes(classes, n_clusters))
