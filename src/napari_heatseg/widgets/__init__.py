"""napari widgets of heatseg (Qt via magicgui/qtpy; never imported by the core).

``SegmentWidget`` is loaded on first access, so that the Qt-free helpers here (the child
process of :mod:`._process`) can be imported without Qt.
"""

__all__ = ["SegmentWidget"]


def __getattr__(name):
    if name == "SegmentWidget":
        from ._segment_widget import SegmentWidget

        return SegmentWidget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
