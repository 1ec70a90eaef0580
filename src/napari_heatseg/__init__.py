"""napari-heatseg: semi-automatic segmentation with the heat semigroup.

>>> import napari_heatseg as hs
>>> labels = hs.segment(image, start, scope="object")   # doctest: +SKIP
"""

from .core.api import Step, evolve, methods, segment

__version__ = "0.1.0"
__all__ = ["Step", "evolve", "methods", "segment", "__version__"]
