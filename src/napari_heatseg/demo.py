"""The demo: every bundled sample segmented from its standard start, with overlays and a table.

``heatseg demo`` runs it; the report (labels, overlays, ``results.md`` and ``results.csv``)
is written here, beside the samples it reads (:mod:`napari_heatseg.samples`).
"""

import csv
import io
import sys
import time
from pathlib import Path

import numpy as np

from .core.metrics import iou

__all__ = ["demo_files", "run_demo", "write_overlay"]


def demo_files():
    """The names of the files :func:`run_demo` writes (a folder holding only these is its own)."""
    from napari_heatseg.samples import SAMPLES

    return {f"{name}_{kind}" for name in SAMPLES for kind in ("labels.tif", "overlay.png")} | {
        "results.md", "results.csv"}


def run_demo(out_dir, method="heat", params=None):
    """Segment every sample into ``out_dir`` (an existing folder); returns the Markdown table.

    Progress goes to stderr, one line per sample.
    """
    import napari_heatseg as hs
    from napari_heatseg.core.outputs import write_labels
    from napari_heatseg.samples import SAMPLES, load_sample

    out_dir, params = Path(out_dir), dict(params or {})
    rows = []
    for name in SAMPLES:
        sample = load_sample(name)
        t0 = time.perf_counter()
        labels = hs.segment(sample["image"], sample["start"], method=method, scope=sample["scope"],
                            spacing=sample["spacing"], channel_axis=sample["channel_axis"], **params)
        seconds = time.perf_counter() - t0
        write_labels(out_dir / f"{name}_labels.tif", labels, spacing=sample["spacing"], overwrite=True)
        write_overlay(out_dir / f"{name}_overlay.png", sample["image"], sample["channel_axis"], labels,
                      sample["start"], sample["truth"], overwrite=True)
        score = "" if sample["truth"] is None else f"{iou(sample['truth'], labels):.3f}"
        rows.append(dict(sample=name, shape="x".join(map(str, labels.shape)), scope=sample["scope"],
                         iou=score, seconds=f"{seconds:.2f}"))
        print(f"{name:10s} {rows[-1]['shape']:>12s}  IoU {rows[-1]['iou'] or 'n/a':>5s}  {seconds:6.2f} s",
              file=sys.stderr)
    _write_tables(out_dir, rows, method, params)
    return _markdown(rows, method, params)


def _display(image, channel_axis):
    """float RGB in [0, 1] for an overlay (robust grey levels)."""
    image = np.asarray(image, dtype=np.float64)
    if channel_axis is not None:
        image = np.moveaxis(image, channel_axis, -1)[..., :3]
    low, high = np.nanpercentile(image, [0.5, 99.5])
    image = np.clip((image - low) / (high - low if high > low else 1.0), 0, 1)
    return image if channel_axis is not None else np.repeat(image[..., None], 3, axis=-1)


def write_overlay(path, image, channel_axis, labels, start, truth=None, *, overwrite=False):
    """Write a PNG of ``image`` with the outlines of the result (yellow), the ground truth
    (cyan, if given) and the start (magenta); a volume shows its slice with the most result
    and start. Atomic, like every output."""
    from .core.outputs import atomic_write

    rgb = _overlay(image, channel_axis, labels, start, truth)
    return atomic_write(path, lambda tmp: _write_png(tmp, rgb), overwrite=overwrite)


def _overlay(image, channel_axis, labels, start, truth):
    """RGB uint8 overlay: result (yellow), ground truth (cyan), start (magenta)."""
    from skimage.segmentation import find_boundaries

    image = _display(image, channel_axis)
    layers = [(labels, (1.0, 1.0, 0.0)), (start, (1.0, 0.0, 1.0))]
    if truth is not None:
        layers.insert(1, (truth, (0.0, 1.0, 1.0)))
    if labels.ndim == 3:  # the slice where the result and the start are largest
        weight = (labels > 0).sum(axis=(1, 2)) + (start > 0).sum(axis=(1, 2))
        z = int(np.argmax(weight))
        image = image[z]
        layers = [(lab[z], colour) for lab, colour in layers]
    out = image.copy()
    for lab, colour in layers:
        edge = find_boundaries(lab, mode="inner")
        out[edge] = colour
    zoom = max(1, 400 // max(out.shape[:2]))  # small images: enlarge (nearest) to be legible
    out = out.repeat(zoom, axis=0).repeat(zoom, axis=1)
    return (out * 255).astype(np.uint8)


def _write_png(path, rgb):
    import imageio.v3 as iio

    iio.imwrite(path, rgb, extension=".png")


def _markdown(rows, method, params):
    lines = [f"heatseg demo: method {method}" + (f", params {params}" if params else ""), "",
             "| sample | shape | scope | IoU | time (s) |", "|---|---|---|---|---|"]
    lines += [f"| {r['sample']} | {r['shape']} | {r['scope']} | {r['iou'] or 'n/a'} | {r['seconds']} |" for r in rows]
    return "\n".join(lines)


def _write_tables(out_dir, rows, method, params):
    from .core.outputs import atomic_write

    text = _markdown(rows, method, params) + "\n"
    atomic_write(out_dir / "results.md", lambda tmp: Path(tmp).write_text(text), overwrite=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(out_dir / "results.csv", lambda tmp: Path(tmp).write_text(buffer.getvalue()), overwrite=True)
