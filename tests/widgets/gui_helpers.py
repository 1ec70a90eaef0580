"""Helpers shared by the GUI tests."""

import importlib.util
from pathlib import Path

import numpy as np


def load_item(dataset, item):
    """tests/dev_data.py's ``load_item`` (dev data; skips if absent)."""
    path = Path(__file__).resolve().parents[1] / "dev_data.py"
    spec = importlib.util.spec_from_file_location("_heatseg_dev_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load_item(dataset, item)


def choose(widget, image=None, start=None, **values):
    """Set the widget's layer pickers and options."""
    widget.reset_choices()
    if image is not None:
        widget._image.value = image
    if start is not None:
        widget._start.value = start
    for name, value in values.items():
        heat = {"max_iter": "max_num_iter"}.get(name, name)  # heat parameters: the core's names
        (widget._heat[heat] if heat in widget._heat else getattr(widget, f"_{name}")).value = value


def run_to_end(qtbot, widget, timeout=60_000):
    """Press Run and wait until the widget is ready again."""
    widget.run_button.clicked()
    assert widget.controller.running, widget.status.value
    qtbot.waitUntil(lambda: not widget.controller.running, timeout=timeout)


def compare_nuclei_sample(qtbot, viewer, widget):
    """Open the nuclei2d sample, run the widget on it and compare (foreground only) with its
    ground truth layer."""
    viewer.open_sample("napari-heatseg", "nuclei2d")
    choose(widget, viewer.layers["nuclei2d"], viewer.layers["nuclei2d start"])
    run_to_end(qtbot, widget)
    widget.reset_choices()
    widget._reference.value = viewer.layers["nuclei2d ground truth"]
    widget._foreground_only.value = True
    widget.compare_button.clicked()


def disk_image(shape=(96, 96), centre=(48, 44), radius=22, noise=0.1, seed=0):
    """A bright noisy disk on a dark background, and its true mask."""
    rng = np.random.default_rng(seed)  # result-bearing seed
    grid = np.indices(shape)
    truth = sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius**2
    return (truth + noise * rng.standard_normal(shape)).astype(np.float32), truth


def seeded_disk():
    """A 128² noisy disk (radius 50), its mask, and an 8x8 seed at its centre.

    From the seed the object grows over many iterations: a run long enough to pause,
    cancel or close mid-way (with the ``slow_evolve`` fixture).
    """
    image, truth = disk_image(shape=(128, 128), centre=(64, 64), radius=50)
    start = np.zeros(image.shape, np.uint8)
    start[60:68, 60:68] = 1
    return image, truth, start


def run_until_shown(qtbot, widget, updates=2):
    """Press Run, unthrottled, and wait until ``updates`` states have reached the preview."""
    widget.controller.min_interval = 0.0
    widget.run_button.clicked()
    qtbot.waitUntil(lambda: widget.controller.n_updates >= updates, timeout=20_000)


def iou(a, b, valid=None):
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    if valid is not None:
        a, b = a & valid, b & valid
    return (a & b).sum() / (a | b).sum()


def metrics_shown(widget):
    """``{column title: {score title: cell text}}`` as the metrics table shows them."""
    view = widget.table.native
    scores = [view.verticalHeaderItem(r).text() for r in range(view.rowCount())]
    return {view.horizontalHeaderItem(c).text(): {score: view.item(r, c).text() for r, score in enumerate(scores)}
            for c in range(view.columnCount())}
