"""Box start on photos at higher resolution: the coarsened edge-aware heat against the exact one.

A box's kernel widens with the box (sigma = 2.5 % of its size), and the edge-aware heat's
cost per application grows with sigma, so a box on a photo upscaled k times costs about
k³ times more on its own grid. :func:`napari_heatseg.core.edge_heat.edge_heat_operator`
applies kernels wider than ``COARSEN_FROM_SIGMA`` voxels on a coarser grid instead. This
script runs both photo sets (``natural2d_grabcut``, ``natural2d_coco_mval``) upscaled by
each factor (bilinear for the photo, nearest for box and target), with the defaults, once
as shipped and once with the coarsening off (``COARSEN_FROM_SIGMA = inf``, exact but slow),
and prints mean IoU and median seconds per set, with OpenCV GrabCut on the same boxes in
the same run (random seed 0).

Run from the project root (about 10 minutes; the exact runs are the slow part)::

    python -m benchmarks.box_resolution               # writes results/box_resolution.md
    python -m benchmarks.box_resolution --scales 2 --limit 4
"""

import argparse
import statistics
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from skimage.transform import rescale

import napari_heatseg as hs
import napari_heatseg.core.edge_heat as edge_heat
from benchmarks import common

SETS = ("natural2d_grabcut", "natural2d_coco_mval")
RESULTS = Path(__file__).resolve().parent / "results" / "box_resolution.md"


def upscaled(item, factor):
    """``item`` with photo, box and target ``factor`` times larger."""
    if factor == 1:
        return item
    image = rescale(item.image, factor, order=1, channel_axis=-1, preserve_range=True).astype(np.float32)

    def nearest(mask):
        return rescale(mask, factor, order=0, preserve_range=True, anti_aliasing=False).astype(mask.dtype)

    return replace(item, image=image, start=nearest(item.start), target=nearest(item.target))


def run_heat(item):
    return hs.segment(item.image, item.start.astype(np.uint8), scope="inside", channel_axis=item.channel_axis)


def run_exact_heat(item):
    """:func:`run_heat` with the coarsening off (``COARSEN_FROM_SIGMA = inf``)."""
    shipped = edge_heat.COARSEN_FROM_SIGMA
    edge_heat.COARSEN_FROM_SIGMA = np.inf
    try:
        return run_heat(item)
    finally:
        edge_heat.COARSEN_FROM_SIGMA = shipped


def run_grabcut(item):
    return common.run_grabcut(np.clip(item.image, 0, 255).astype(np.uint8), item.start)  # seed 0


def measure(items, factor, run):
    """(mean IoU, median seconds) of ``run(item)`` on the items upscaled by ``factor``."""
    scores, seconds = [], []
    for item in items:
        big = upscaled(item, factor)
        labels, took = common.timed(run, big)
        scores.append(common.score(big, labels))
        seconds.append(took)
    return float(np.mean(scores)), statistics.median(seconds)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", nargs="+", type=float, default=[1.0, 2.0])
    parser.add_argument("--limit", type=int, default=None, help="items per set (default: all)")
    args = parser.parse_args(argv)
    present = [name for name in SETS if name in common.available_sets()]
    if not present:
        print("skipped: the photo sets are not beside the project (../shared/data)")
        return 0
    hs.warm_up()
    lines = ["| set | scale | heat, shipped: IoU / median s | heat, exact operator: IoU / median s "
             "| GrabCut: IoU / median s |", "|---|---|---|---|---|"]
    for name in present:
        items = common.load_set(name, limit=args.limit)
        for factor in args.scales:
            rows = [measure(items, factor, run) for run in (run_heat, run_exact_heat, run_grabcut)]
            lines.append(f"| {name} | {factor:g}x | " + " | ".join(f"{iou:.3f} / {s:.2f}" for iou, s in rows) + " |")
            print(lines[-1], flush=True)
    if args.limit is None and args.scales == [1.0, 2.0]:
        RESULTS.write_text("Box on photos upscaled (`python -m benchmarks.box_resolution`, this machine, "
                           "2 shared cores):\n\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
