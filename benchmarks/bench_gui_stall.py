"""How fluid is napari while the heatseg widget runs? Main-thread stalls, updates/s, run time.

A QTimer ticks every 5 ms on the main thread and records the gaps between ticks while the
widget segments an image: 512 x 512 (the stardist demo nuclei if the development data is
beside the project, else a synthetic image), a synthetic 1024 x 1024 image and a synthetic
60 x 256 x 256 volume (issue 14's scenes; scope 'all', balls in the 3 largest objects), and
a 1024 x 1024 colour photo from a box (``photo``: a GrabCut photo resized, if the development
data is there; scope 'inside'), a run of seconds. The longest gap minus the 5 ms period is
the longest time the GUI could not respond; the median gap, how smooth it felt. The widget's
run time (Run click to the result drawn) is compared with the bare core's (``hs.segment``
in a plain thread, no preview) measured just before it, three times (the median of the
three ratios: on a shared machine the load drifts between runs). For contrast, the
same measurement is taken while the segmentation runs on the main thread (what a widget
without a worker would do), and with nothing running.

Run (starts a virtual display if there is none; about two minutes):

    python benchmarks/bench_gui_stall.py [--scenes 512 1024 3d photo]
"""

import os
import threading
import time
from pathlib import Path

import numpy as np

TICK_MS = 5
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def test_volume(shape=(60, 256, 256)):
    """(volume, start): 12 noisy balls of radius 12-25 voxels, balls in the 3 largest."""
    from napari_heatseg.samples import ball_start

    rng = np.random.default_rng(0)
    grid = np.indices(shape, sparse=True)
    truth = np.zeros(shape, np.uint16)
    for k in range(1, 13):
        radius = rng.uniform(12, 25)
        centre = [rng.uniform(radius, n - radius) for n in shape]
        truth[sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius**2] = k
    volume = (truth > 0) + 0.3 * rng.standard_normal(shape)
    return volume.astype(np.float32), ball_start(truth, n=3)


def test_image(size=512):
    """(image, start): real 512^2 nuclei with balls in the 3 largest, or a synthetic stand-in."""
    from napari_heatseg.samples import ball_start

    path = DATA / "nuclei_stardist_demo" / "images" / "nuclei2d_dsb2018.tif"
    if path.exists() and size == 512:
        import tifffile

        image = tifffile.imread(path)
        truth = tifffile.imread(DATA / "nuclei_stardist_demo" / "masks" / "nuclei2d_dsb2018.tif")
        return image, ball_start(truth, n=3)
    rng = np.random.default_rng(0)
    grid = np.indices((size, size))
    truth = np.zeros((size, size), np.uint16)
    for k, (y, x) in enumerate(rng.integers(40, size - 40, (12, 2)), start=1):
        truth[(grid[0] - y) ** 2 + (grid[1] - x) ** 2 <= 25**2] = k
    image = (truth > 0) + 0.2 * rng.standard_normal((size, size))
    return image.astype(np.float32), ball_start(truth, n=3)


def test_photo(size=1024):
    """(image, start, None): a GrabCut photo resized to ``size``² with a box 2 % wider than
    its object, or None without the development data."""
    path = DATA / "natural2d_grabcut" / "images" / "181079.tif"
    if not path.exists():
        return None
    import tifffile
    from skimage.transform import resize

    image = resize(tifffile.imread(path), (size, size), order=1, preserve_range=True).astype(np.uint8)
    truth = resize(tifffile.imread(str(path).replace("images", "masks")) > 0, (size, size), order=0)
    rows, cols = np.nonzero(truth)
    pad = size // 50
    start = np.zeros((size, size), np.uint8)
    start[max(rows.min() - pad, 0):rows.max() + pad + 1, max(cols.min() - pad, 0):cols.max() + pad + 1] = 1
    return image, start


class TickRecorder:
    """Record the gaps between ticks of a 5 ms QTimer on the main thread."""

    def __init__(self):
        from qtpy.QtCore import QTimer

        self.gaps = []  # seconds between consecutive ticks
        self.starts = []  # perf_counter time at which each gap began
        self._last = None
        self._timer = QTimer()
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)

    def _tick(self):
        now = time.perf_counter()
        if self._last is not None:
            self.gaps.append(now - self._last)
            self.starts.append(self._last)
        self._last = now

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.stop()

    def clear(self):
        self.gaps.clear()
        self.starts.clear()

    @property
    def longest_stall_ms(self):
        return self.longest_stall_after(-np.inf)

    @property
    def median_gap_ms(self):
        return 1000 * float(np.median(self.gaps)) if self.gaps else 0.0

    def longest_stall_after(self, t):
        """Longest stall among the gaps that began after time ``t``."""
        gaps = [g for g, s in zip(self.gaps, self.starts) if s > t]
        return max(0.0, 1000 * max(gaps, default=0.0) - TICK_MS)


def process_events_until(done, timeout=300.0):
    from qtpy.QtWidgets import QApplication

    end = time.perf_counter() + timeout
    while not done():
        if time.perf_counter() > end:
            raise TimeoutError("the run did not finish in time")
        QApplication.processEvents()
        time.sleep(0.001)


def measure_widget(viewer, widget, image, start, arguments, runs=3):
    """Run the widget to the end ``runs`` times: per run, longest stall, draws/s, handler time,
    and the bare core's time on the same input just before it (:func:`measure_worker_alone`),
    so that each ratio compares runs made under the same load.

    Also returns how long the widget held the main thread to add its (empty) preview layer
    when the image was picked, ahead of the first run (napari builds the layer's visual then).
    """
    from qtpy.QtWidgets import QApplication

    QApplication.processEvents()  # let the widget's own start-up calls pass before timing them
    prepare = widget._prepare_preview
    prepare_ms = []

    def timed_prepare():
        t = time.perf_counter()
        prepare()
        prepare_ms.append(1000 * (time.perf_counter() - t))

    widget._prepare_preview = timed_prepare
    try:
        image_layer = viewer.add_image(image, name="bench image")
        start_layer = viewer.add_labels(start, name="bench start")
        widget.reset_choices()
        widget._image.value, widget._start.value = image_layer, start_layer
        widget._scope.value = arguments["scope"]
        with TickRecorder() as warm_ticks:  # the compiled loops load on a thread meanwhile
            process_events_until(lambda: widget._preview is not None)
            t_warm = time.perf_counter()
            process_events_until(lambda: not any(t.name == "heatseg warm-up" for t in threading.enumerate()))
            warm_s = time.perf_counter() - t_warm
    finally:
        widget._prepare_preview = prepare
    show = widget.controller._on_update
    results = []
    for _ in range(runs):
        core = measure_worker_alone(image, start, arguments)
        handler_ms = []

        def timed_show(update):
            t = time.perf_counter()
            show(update)
            handler_ms.append(1000 * (time.perf_counter() - t))

        widget.controller._on_update = timed_show
        try:
            with TickRecorder() as ticks:
                process_events_until(lambda: len(ticks.gaps) > 20, timeout=10)  # settle
                ticks.clear()
                t0 = time.perf_counter()
                widget.run_button.clicked()
                click_ms = 1000 * (time.perf_counter() - t0)
                process_events_until(lambda: widget.controller.n_updates > 0 or not widget.controller.running)
                first_update = time.perf_counter()
                process_events_until(lambda: not widget.controller.running)
                seconds = time.perf_counter() - t0
        finally:
            widget.controller._on_update = show
        n = len(handler_ms)  # states drawn, the result included
        results.append({"longest_stall_ms": ticks.longest_stall_ms, "median_gap_ms": ticks.median_gap_ms,
                        "click_ms": click_ms,
                        "stall_after_first_update_ms": ticks.longest_stall_after(first_update),
                        "updates": n, "seconds": seconds, "core": core,
                        "updates_per_s": n / seconds, "status": widget.status.value,
                        "handler_ms_median": float(np.median(handler_ms)), "handler_ms_max": max(handler_ms)})
    return {"prepare_preview_ms": max(prepare_ms), "runs": results,
            "warm_up_s": warm_s, "warm_up_stall_ms": warm_ticks.longest_stall_after(t_warm)}


def measure_clicks(viewer, widget, image, n=6):
    """Click-to-updated-preview latency after a run: clicks, each timed from the click until
    its correction has been shown. Positive clicks on bright voxels the preview missed, else
    negative clicks on voxels it holds (``n`` in all, alternating when both exist)."""
    from qtpy.QtWidgets import QApplication

    prompts = widget.loop.correct_by_clicking()
    held = np.asarray(widget._preview.data) > 0
    rng = np.random.default_rng(0)
    candidates = [(True, np.argwhere((image > np.percentile(image, 90)) & ~held)), (False, np.argwhere(held))]
    candidates = [(positive, points) for positive, points in candidates if len(points)]
    latencies = []
    for k in range(n):
        positive, points = candidates[k % len(candidates)]
        point = points[rng.integers(len(points))]
        widget.loop.negative_clicks.value = not positive
        QApplication.processEvents()
        began, gate = time.perf_counter(), widget.controller.gate
        prompts.add(point.astype(float))
        process_events_until(lambda gate=gate: widget.controller.gate is not gate and not widget.controller.running,
                             timeout=30)
        latencies.append(1000 * (time.perf_counter() - began))
    widget.loop.negative_clicks.value = False
    return {"click_to_preview_ms": latencies}


def measure_worker_alone(image, start, arguments):
    """The same run in a plain thread with no preview: the bare core's time and what the
    worker costs the GUI (GIL)."""
    import napari_heatseg as hs

    done = []

    def work():
        began = time.perf_counter()
        hs.segment(image, start, **arguments)
        done.append(time.perf_counter() - began)

    thread = threading.Thread(target=work)
    with TickRecorder() as ticks:
        process_events_until(lambda: len(ticks.gaps) > 20, timeout=10)
        ticks.clear()
        thread.start()
        process_events_until(lambda: bool(done))
    thread.join()
    return {"longest_stall_ms": ticks.longest_stall_ms, "seconds": done[0]}


def measure_blocking(image, start, arguments):
    """The same segmentation run on the main thread, for contrast."""
    import napari_heatseg as hs

    with TickRecorder() as ticks:
        process_events_until(lambda: len(ticks.gaps) > 20, timeout=10)
        ticks.clear()
        hs.segment(image, start, **arguments)
        before = len(ticks.gaps)
        process_events_until(lambda: len(ticks.gaps) > before + 2, timeout=10)  # the tick after
    return {"longest_stall_ms": ticks.longest_stall_ms}


def measure_redraw(viewer, repeats=6):
    """Median time to redraw the canvas once (refresh the top layer, process events)."""
    from qtpy.QtWidgets import QApplication

    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        viewer.layers[-1].refresh()
        QApplication.processEvents()
        times.append(1000 * (time.perf_counter() - t))
    return {"redraw_ms_median": float(np.median(times))}


def measure_idle(seconds=1.0):
    with TickRecorder() as ticks:
        end = time.perf_counter() + seconds
        process_events_until(lambda: time.perf_counter() > end)
    return {"longest_stall_ms": ticks.longest_stall_ms}


def run(viewer, widget, size=512):
    """Every measurement on the ``size``² image, the 60 x 256 x 256 volume for ``size='3d'``
    or the 1024² photo from a box for ``size='photo'`` (None without the data)."""
    arguments = {"scope": "all"}
    if size == "photo":
        scene = test_photo()
        if scene is None:
            return None
        image, start = scene
        arguments = {"scope": "inside", "channel_axis": -1}
    else:
        image, start = test_volume() if size == "3d" else test_image(size)
    result = {"shape": image.shape, "scope": arguments["scope"],
              "widget": measure_widget(viewer, widget, image, start, arguments)}
    if size == 512:
        result.update(clicks=measure_clicks(viewer, widget, image))
    result.update(idle=measure_idle(), redraw=measure_redraw(viewer),
                  blocking=measure_blocking(image, start, arguments))
    return result


def clear_layers(viewer):
    """Remove the bench layers (the widget's preview too), so the next scene starts afresh."""
    for layer in list(viewer.layers):
        viewer.layers.remove(layer)


def report(result):
    widget = result["widget"]
    print(f"image {result['shape']}, heat method, scope {result['scope']!r}; main-thread gaps (5 ms ticks):")
    print(f"  picking the image adds the empty preview layer: {widget['prepare_preview_ms']:.0f} "
          "ms, once, before any run")
    print(f"  then the compiled loops load on a thread: {widget['warm_up_s']:.2f} s, longest "
          f"stall meanwhile {widget['warm_up_stall_ms']:.0f} ms (once per session)")
    for index, w in enumerate(widget["runs"], start=1):
        core = w["core"]
        print(f"  widget run {index}: longest stall {w['longest_stall_ms']:.0f} ms, median gap "
              f"{w['median_gap_ms']:.1f} ms; Run click itself {w['click_ms']:.0f} ms; after the first "
              f"preview update {w['stall_after_first_update_ms']:.0f} ms")
        print(f"    {w['updates']} states drawn in {w['seconds']:.2f} s = {w['updates_per_s']:.1f} "
              f"draws/s; {w['seconds'] / core['seconds']:.2f}x the bare core's {core['seconds']:.2f} s "
              "(measured just before)")
        print(f"    ({w['status']})")
        print(f"    our update handler:   median {w['handler_ms_median']:.0f} ms, max {w['handler_ms_max']:.0f} ms")
        print(f"    worker alone, no GUI: longest stall {core['longest_stall_ms']:.0f} ms (GIL held by the core)")
    ratio = np.median([w["seconds"] / w["core"]["seconds"] for w in widget["runs"]])
    print(f"  GUI run / bare core: median {ratio:.2f}x")
    if "clicks" in result:
        clicks = result["clicks"]["click_to_preview_ms"]
        print(f"  click to updated preview: median {np.median(clicks):.0f} ms, max {max(clicks):.0f} ms "
              f"({len(clicks)} clicks)")
    print(f"  idle viewer:            {result['idle']['longest_stall_ms']:.0f} ms; one canvas redraw "
          f"{result['redraw']['redraw_ms_median']:.0f} ms (median)")
    print(f"  same run on the main thread: {result['blocking']['longest_stall_ms']:.0f} ms")


def main():
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", nargs="+", default=["512", "1024", "3d", "photo"],
                        choices=["512", "1024", "3d", "photo"])
    scenes = parser.parse_args().scenes
    display = None
    if not os.environ.get("DISPLAY"):
        from pyvirtualdisplay import Display

        display = Display(visible=False, size=(1600, 1000))
        display.start()
    try:
        import napari

        viewer = napari.Viewer()
        _, widget = viewer.window.add_plugin_dock_widget("napari-heatseg", "Heat segmentation")
        for scene in scenes:
            result = run(viewer, widget, scene if scene in ("3d", "photo") else int(scene))
            if result is None:
                print(f"scene {scene}: skipped, the development data is not beside the project")
                continue
            report(result)
            clear_layers(viewer)
        viewer.close()
    finally:
        if display is not None:
            display.stop()


if __name__ == "__main__":
    main()
