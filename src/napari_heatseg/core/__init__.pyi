# The core's public names, read by lazy_loader (``__init__.py``) and by type checkers.
__all__ = ["Step", "evolve", "methods", "segment", "warm_up"]

from .api import Step, evolve, methods, segment, warm_up
