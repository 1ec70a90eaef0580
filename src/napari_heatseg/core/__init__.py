"""The pure core of napari-heatseg: numpy/scipy only, no napari, no Qt.

Its public names (``__init__.pyi``) are imported when first used, so ``import
napari_heatseg.core.io`` (say) does not load the solver and its compiled loops.
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)
