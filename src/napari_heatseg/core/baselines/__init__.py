"""Classical segmentation methods behind the same interface as the heat semigroup.

Each entry of :data:`BASELINES` maps a method name to a function
``fn(prepared, **params) -> phases``: it receives a
:class:`napari_heatseg.core.inputs.Prepared` bundle and returns an int array of the
spatial shape holding phase indices ``0..prepared.n_labels`` (0 = background).
Parameters are keyword-only, so :func:`napari_heatseg.segment` can list them.

The algorithms are scikit-image's and SciPy's; this package adds only the glue
(``_task.py``): the scope, the seeds, which class belongs to which label, and the
reduction of colour to luminance for the grey-only methods.
"""

from ._contour import chan_vese, morph_chan_vese, morph_geodesic, random_walker, watershed
from ._region import kmeans, region_growing
from ._threshold import threshold_local, threshold_multiotsu, threshold_otsu

__all__ = ["BASELINES"]

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
