"""The dock widget's layout: collapsible sections in a scroll area, and a status line below.

napari puts a plugin's widget in a dock as it is (``widget.native``), so the scroll area is
made here: at 1366x768 the sections scroll and nothing vanishes. The status line sits
under the scroll area, always visible; it wraps long text and never asks for width, so a
long message (an error in full) makes it taller, never the dock wider. Closing the dock
cancels the run (:class:`CancelWhenRemoved`).
"""

from magicgui.widgets import Label
from qtpy.QtCore import QEvent, QObject, Qt
from qtpy.QtWidgets import QFrame, QScrollArea, QSizePolicy, QVBoxLayout, QWidget
from superqt import QCollapsible

__all__ = ["CancelWhenRemoved", "StatusLine", "scroll_sections"]

ERROR_STYLE = "color: #ff6b6b;"  # readable on napari's dark and light themes


class StatusLine(Label):
    """A wrapping, selectable status line: ``say(text, details=..., error=...)``.

    ``details`` is the tooltip (numbers that mean little to an annotator, such as the
    energy); ``error=True`` shows the text in red until the next message.
    """

    def __init__(self, value="ready"):
        super().__init__(value=value)
        label = self.native
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        policy = QSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        label.setSizePolicy(policy)
        label.setMinimumWidth(1)
        self.error = False
        self._saying = False
        self.changed.connect(self._plain)

    def say(self, text, *, details="", error=False):
        self._saying = True
        try:
            self._style(details, error)
            self.value = text
        finally:
            self._saying = False

    def _plain(self, _value):
        """A plain ``status.value = ...``: no error, no details."""
        if not self._saying:
            self._style("", False)

    def _style(self, details, error):
        self.error = error
        self.native.setStyleSheet(ERROR_STYLE if error else "")
        self.native.setToolTip(details)


class _FitContent(QObject):
    """Keeps an expanded section as tall as its content: QCollapsible fixes the height when
    it expands, so a table filled or a field shown later would be cut off."""

    def __init__(self, section, content):
        super().__init__(section)
        self._section = section
        content.installEventFilter(self)

    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.LayoutRequest and self._section.isExpanded():
            self._section.expand(animate=False)  # measures the content again
        return False


def _section(title, container, expanded):
    section = QCollapsible(title)
    section.setDuration(0)  # no animation: it would redraw the dock for a quarter second
    section.addWidget(container.native)
    if expanded:
        section.expand(animate=False)
    else:
        section.collapse(animate=False)
    section._fit = _FitContent(section, container.native)
    return section


def scroll_sections(root, sections, status):
    """Lay out ``root`` (a magicgui Container, empty): ``sections`` in a scroll area, then ``status``.

    Parameters
    ----------
    root : magicgui.widgets.Container
        The dock widget; its own list of widgets stays empty (its ``reset_choices`` must
        reach the sections' pickers).
    sections : list of (str, magicgui.widgets.Container, bool)
        Title, content and whether it starts expanded, top to bottom.
    status : StatusLine

    Returns
    -------
    dict
        ``{title: QCollapsible}``.
    """
    body = QWidget()
    column = QVBoxLayout(body)
    column.setContentsMargins(0, 0, 0, 0)
    collapsibles = {}
    for title, container, expanded in sections:
        collapsibles[title] = _section(title, container, expanded)
        column.addWidget(collapsibles[title])
    column.addStretch(1)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(body)
    scroll.setMinimumWidth(body.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width())
    layout = root.native.layout()
    layout.addWidget(scroll, 1)
    layout.addWidget(status.native)
    return collapsibles


class CancelWhenRemoved(QObject):
    """Cancels the run when the widget leaves its dock (napari unparents a removed dock widget)."""

    def __init__(self, widget, cancel):
        super().__init__(widget)
        self._cancel = cancel
        widget.installEventFilter(self)

    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.ParentChange and obj.parent() is None:
            self._cancel()
        return False
