"""The pure core of napari-heatseg: numpy/scipy only, no napari, no Qt."""

from .api import Step, evolve, methods, segment

__all__ = ["Step", "evolve", "methods", "segment"]
