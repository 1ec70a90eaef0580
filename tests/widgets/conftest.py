"""Fixtures for GUI tests: a real napari viewer with the heatseg dock widget."""

import importlib.util

import pytest

if importlib.util.find_spec("napari") is None:  # the GUI extra is not installed: nothing to test here
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture
def viewer_widget(make_napari_viewer):
    """A viewer and the heatseg widget, opened through the plugin manifest."""
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-heatseg", "Heat segmentation")
    return viewer, widget


@pytest.fixture
def notifications():
    """Every napari notification dispatched during the test, as ``(severity, message)``."""
    from napari.utils.notifications import notification_manager

    seen = []

    def record(event):
        seen.append((str(event.severity), str(event.message)))

    notification_manager.notification_ready.connect(record)
    yield seen
    notification_manager.notification_ready.disconnect(record)


@pytest.fixture
def slow_evolve(monkeypatch):
    """Make every ``hs.evolve`` step take ``delay`` seconds (to pause/cancel mid-run).

    The heat method also runs on the finest grid only, with a small ``tau``: coarse-to-fine
    reaches the answer in one or two steps, too few to pause or cancel in between.
    """
    import time

    import napari_heatseg as hs

    real = hs.evolve

    def install(delay=0.2):
        def evolve(*args, **kwargs):
            if kwargs.get("method", "heat") == "heat":
                kwargs.update(coarse_to_fine=False, tau=0.5)
            for step in real(*args, **kwargs):
                time.sleep(delay)
                yield step

        monkeypatch.setattr(hs, "evolve", evolve)

    return install
