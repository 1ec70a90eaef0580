"""napari widgets of heatseg (Qt via magicgui/qtpy; never imported by the core)."""

from ._segment_widget import SegmentWidget

__all__ = ["SegmentWidget"]
