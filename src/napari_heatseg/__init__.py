"""napari-heatseg: semi-automatic segmentation with the heat semigroup.

>>> import napari_heatseg as hs
>>> labels = hs.segment(image, start, scope="object")   # doctest: +SKIP

The public names (``__init__.pyi`` lists them) are imported when first used, so importing
the package costs milliseconds; numba, OpenCV, scikit-image and dask load only with the
functions that need them. ``hs.warm_up()`` loads the compiled loops ahead of a first run.
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)

__version__ = "0.1.0"
__all__ += ["__version__"]
