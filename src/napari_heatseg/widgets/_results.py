"""The dock widget's result section: apply the preview to a Labels layer, compare it with a
reference. A mixin of :class:`~napari_heatseg.widgets._segment_widget.SegmentWidget`, which
owns the fields it reads (``_preview``, ``_target``, ``_mode``, ``_reference``,
``_foreground_only``, ``table``, ``object_scores``, ``status``, ``_viewer``) and reports
errors through its ``report_error``."""

import numpy as np
from magicgui.widgets import Container, Label, Table
from napari.utils.notifications import show_warning
from qtpy.QtWidgets import QAbstractScrollArea, QHeaderView, QStyledItemDelegate

from ._defaults import is_instance_reference, metrics_rows
from ._inputs import LayerChoiceError
from ._layers import apply_labels
from ._loop import key_for

__all__ = ["NEW_LAYER", "ONLY_UNLABELLED", "OVERWRITE", "ApplyAndCompare", "metrics_widgets"]

NEW_LAYER = "new layer"
ONLY_UNLABELLED, OVERWRITE = "only unlabelled voxels", "overwrite"


def metrics_widgets():
    """The metrics table (a row per score, a column per label, read-only) and the line of
    object scores under it (shown against an instance reference), in a container as wide
    as the section."""
    table = Table()
    table.read_only = True
    view = table.native
    view.setItemDelegate(QStyledItemDelegate(view))  # the scores as the core formats them, not magicgui's 4 digits
    view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    view.horizontalHeader().setStretchLastSection(True)
    view.setSizeAdjustPolicy(QAbstractScrollArea.SizeAdjustPolicy.AdjustToContents)
    objects = Label(value="")
    objects.native.setWordWrap(True)
    objects.visible = False
    box = Container(widgets=[table, objects], labels=False)
    box.margins = (0, 0, 0, 0)
    return table, objects, box


def _fit_height(view):
    """Make the table as tall as its rows (inside the dock's scroll area it would otherwise
    keep a default height and scroll by itself)."""
    view.resizeRowsToContents()
    height = view.horizontalHeader().sizeHint().height() + sum(view.rowHeight(r) for r in range(view.rowCount()))
    if view.horizontalScrollBar().isVisible() or view.horizontalHeader().length() > view.viewport().width():
        height += view.horizontalScrollBar().sizeHint().height()
    view.setFixedHeight(height + 2 * view.frameWidth() + 4)  # + the grid lines


class ApplyAndCompare:
    """Apply and Compare with reference."""

    def _compare_options_for(self, reference):
        """Compare foreground only against an instance reference (one id per object)."""
        if reference is not None:
            self._foreground_only.value = is_instance_reference(reference.data)

    def apply(self):
        """Write the preview into the target Labels layer (one undo step)."""
        preview = self._preview
        if preview is None or preview not in self._viewer.layers or not np.any(preview.data):
            show_warning("heatseg: nothing to apply; run a segmentation first.")
            return
        target = self.target_layer()
        try:
            changed = apply_labels(target, np.asarray(preview.data),
                                   only_unlabelled=self._mode.value == ONLY_UNLABELLED,
                                   metadata=preview.metadata.get("heatseg"))
        except LayerChoiceError as exc:
            self.report_error(exc)
            return
        self._viewer.layers.selection.active = target  # so that Ctrl+Z undoes the Apply
        preview.visible = False  # the result is in the target now: what is seen is what was applied
        self.status.value = (f"applied: {changed} voxels changed in {target.name!r} (Ctrl+Z undoes); "
                             f"preview hidden ({key_for('toggle_preview')} shows it)")

    def target_layer(self, dtype=None):
        """The 'apply to' layer; for 'new layer', a new Labels layer like the preview (of ``dtype``)."""
        target, preview = self._target.value, self._preview
        if target == NEW_LAYER:
            name = f"{preview.metadata['heatseg']['image']} heatseg"
            target = self._viewer.add_labels(np.zeros(preview.data.shape, dtype or preview.data.dtype), name=name,
                                             scale=preview.scale, translate=preview.translate)
            self._target.value = target
        return target

    def compare(self):
        """Print per-label metrics of the preview against the reference layer; against an
        instance reference, object-level scores too (F1@0.5, mean AP, count error)."""
        reference, preview = self._reference.value, self._preview
        if reference is None or preview is None or preview not in self._viewer.layers:
            show_warning("heatseg: pick a reference Labels layer and run a segmentation first.")
            return
        if reference.data.shape != preview.data.shape:
            self.report_error(f"reference {reference.name!r} has shape {reference.data.shape}, the preview "
                              f"{preview.data.shape}; pick a reference of the image's shape.")
            return
        columns, rows, objects = metrics_rows(np.asarray(reference.data), np.asarray(preview.data),
                                              spacing=tuple(float(s) for s in preview.scale),
                                              foreground_only=self._foreground_only.value)
        # a row per score and a column per label: narrow enough for the dock with a few labels
        self.table.value = {"data": [list(scores) for scores in zip(*rows)][1:], "index": columns[1:],
                            "columns": [f"label {row[0]}" for row in rows]}
        _fit_height(self.table.native)
        self.object_scores.value = objects
        self.object_scores.visible = bool(objects)
        self.status.value = f"compared with {reference.name!r}: {len(rows)} label(s) in the table"
