"""The README screenshot, taken from a real viewer, and the GUI stall benchmark script."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from qtpy.QtWidgets import QScrollArea

from gui_helpers import compare_nuclei_sample

pytestmark = pytest.mark.gui
ROOT = Path(__file__).resolve().parents[2]


def test_screenshot_of_the_widget_in_use(make_napari_viewer, qtbot, tmp_path):
    """Open a sample, run, and screenshot the whole window (widget included).

    Writes docs/screenshot.png only when HEATSEG_UPDATE_SCREENSHOT=1, so CI never
    rewrites files of the project tree.
    """
    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1500, 950)
    _, widget = viewer.window.add_plugin_dock_widget("napari-heatseg", "Heat segmentation")
    compare_nuclei_sample(qtbot, viewer, widget)
    viewer.layers["nuclei2d start"].visible = False
    viewer.layers.selection.active = viewer.layers["heatseg preview"]
    qtbot.wait(400)  # the dock lays out the metrics table
    bar = widget.native.findChild(QScrollArea).verticalScrollBar()
    bar.setValue(bar.maximum())  # the metrics table in view
    qtbot.wait(200)
    shot = viewer.screenshot(canvas_only=False, flash=False)
    canvas = viewer.screenshot(canvas_only=True, flash=False)
    assert shot.shape[1] > canvas.shape[1] + 200  # the dock widget is in the picture
    assert shot.shape[0] >= 600
    path = tmp_path / "screenshot.png"
    if os.environ.get("HEATSEG_UPDATE_SCREENSHOT") == "1":
        path = ROOT / "docs" / "screenshot.png"
    from skimage.io import imsave

    imsave(path, shot[..., :3], check_contrast=False)
    assert path.stat().st_size > 10_000


def test_stall_benchmark_script_runs(viewer_widget):
    """The script measures; its timing is not asserted here (CI machines differ)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_gui_stall
    finally:
        sys.path.pop(0)
    viewer, widget = viewer_widget
    widget._heat["max_num_iter"].value = 5
    result = bench_gui_stall.run(viewer, widget, size=128)
    assert result["shape"] == (128, 128)
    runs = result["widget"]["runs"]
    assert all(run["updates"] >= 1 for run in runs)
    assert all(np.isfinite(run["longest_stall_ms"]) for run in runs)
    assert result["widget"]["prepare_preview_ms"] > 0  # the preview layer was made before Run
    assert result["blocking"]["longest_stall_ms"] >= 0
