# The public surface, read by lazy_loader (``__init__.py``) and by type checkers.
__all__ = ["Step", "evolve", "fill_between_slices", "instances", "methods", "segment", "segment_chunked", "segment_stack", "warm_up"]

from .core.api import Step, evolve, methods, segment, warm_up
from .core.fill_between import fill_between_slices
from .core.ictm.chunked import segment_chunked
from .core.instances import instances
from .core.stack import segment_stack

__version__: str
