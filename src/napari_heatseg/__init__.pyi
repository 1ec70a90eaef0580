# The public surface, read by lazy_loader (``__init__.py``) and by type checkers.
__all__ = ["Step", "evolve", "instances", "methods", "segment", "segment_chunked", "segment_stack", "warm_up"]

from .core.api import Step, evolve, methods, segment, warm_up
from .core.ictm.chunked import segment_chunked
from .core.instances import instances
from .core.stack import segment_stack

__version__: str
