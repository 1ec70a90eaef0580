"""Classical segmentation methods behind the same interface as the heat semigroup.

Each entry of :data:`BASELINES` maps a method name to a function
``fn(prepared, **params) -> phases``: it receives a
:class:`napari_heatseg.core.inputs.Prepared` bundle and returns an int array of the
spatial shape holding phase indices ``0..prepared.n_labels`` (0 = background).
Parameters are keyword-only, so :func:`napari_heatseg.segment` can list them.

The algorithms are scikit-image's and SciPy's; this package adds only the glue
(``_task.py``): the scope, the seeds, which class belongs to which label, and the
reduction of colour to luminance for the grey-only methods. :func:`memory_bytes` bounds
each one's working memory, so :func:`napari_heatseg.segment` refuses, before any work, an
image that would not fit.
"""

from typing import NamedTuple

import numpy as np

from ._contour import chan_vese, morph_chan_vese, morph_geodesic, random_walker, watershed
from ._region import kmeans, region_growing
from ._threshold import threshold_local, threshold_multiotsu, threshold_otsu

__all__ = ["BASELINES", "MEMORY_MODELS", "memory_bytes"]

BASELINES = {
    "threshold_otsu": threshold_otsu,
    "threshold_multiotsu": threshold_multiotsu,
    "threshold_local": threshold_local,
    "region_growing": region_growing,
    "kmeans": kmeans,
    "watershed": watershed,
    "random_walker": random_walker,
    "morph_chan_vese": morph_chan_vese,
    "morph_geodesic": morph_geodesic,
    "chan_vese": chan_vese,
}


class MemoryModel(NamedTuple):
    """Working memory of one baseline in bytes per voxel: ``base + per_channel * C +
    per_label * K + per_axis * D`` for ``C`` channels, ``K`` labels and ``D`` spatial axes."""

    base: float
    per_channel: float = 0.0
    per_label: float = 0.0
    per_axis: float = 0.0


# Peaks measured with tracemalloc over a whole ``segment(..., scope="all")`` call, in bytes
# per voxel (2D 128**2 and 256**2, 1 and 3 labels; 3D 16x64x64, 2 labels; grey and RGB):
# thresholds 33-66, region growing 27-51, k-means 45-97, watershed 42-53, random walker
# 461-470 (2D) and 615-623 (3D: one more edge per voxel), morphological snakes 78-116,
# Chan-Vese 179-202. Each model bounds its measured peaks at 256**2 and 3D by itself.
MEMORY_MODELS = {
    "threshold_otsu": MemoryModel(36, per_channel=6, per_label=4),
    "threshold_multiotsu": MemoryModel(36, per_channel=6, per_label=4),
    "threshold_local": MemoryModel(36, per_channel=6, per_label=4),
    "region_growing": MemoryModel(24, per_channel=8, per_label=2),
    "kmeans": MemoryModel(36, per_channel=12, per_label=10),
    "watershed": MemoryModel(40, per_channel=5),
    "random_walker": MemoryModel(150, per_channel=4, per_axis=155),
    "morph_chan_vese": MemoryModel(50, per_channel=6, per_label=2, per_axis=18),
    "morph_geodesic": MemoryModel(50, per_channel=6, per_label=2, per_axis=18),
    "chan_vese": MemoryModel(180, per_channel=6, per_label=2),
}
MARGIN = 1.15  # on top of each model, as for the heat method
FIXED = 4 * 2**20  # bytes of overhead that do not grow with the image (imports, small tables)


def memory_bytes(method, spatial_shape, n_labels, n_channels=1):
    """Peak working memory, in bytes, of baseline ``method`` on an image of that size.

    The whole run counts: the prepared float32 image and masks, the method's own arrays
    (the random walker's sparse Laplacian, 2 or 3 edges per voxel, dominates its
    ~460-620 bytes per voxel) and the output. ``MEMORY_MODELS[method]`` per voxel, times
    ``MARGIN``, plus ``FIXED``: an upper bound of the peaks measured with
    ``tracemalloc`` (``scope="all"``, the worst case; ``"inside"`` and ``"object"``
    may work on a crop).

    Parameters
    ----------
    method : str
        A key of :data:`BASELINES`.
    spatial_shape : tuple of int
        Spatial shape of the image (no channel axis).
    n_labels, n_channels : int
        Number of labels in the start and of image channels.

    Returns
    -------
    int
        Estimated bytes.
    """
    model = MEMORY_MODELS[method]
    per_voxel = (model.base + model.per_channel * n_channels + model.per_label * n_labels
                 + model.per_axis * len(spatial_shape))
    return int(np.prod(spatial_shape, dtype=np.float64) * per_voxel * MARGIN) + FIXED
