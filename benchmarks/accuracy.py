"""Accuracy benchmark: mean IoU and median seconds per dev set, for every method, in one run.

Methods: napari-heatseg's default (``hs.segment`` defaults), every baseline of
``hs.methods()`` (Otsu is ``threshold_otsu``), heatdiff's ``JacobiThetaSegmenter``
(2D grey, on the image x255) and OpenCV GrabCut (colour 2D, from the box), all from
the standard starts of ``benchmarks/common.py``.

Run from the project root::

    python -m benchmarks.accuracy                       # everything, writes results/accuracy.md
    python -m benchmarks.accuracy --sets natural2d_grabcut --methods heat,grabcut --verbose
"""

import argparse
import statistics
import sys
import warnings
from pathlib import Path

import numpy as np

import napari_heatseg as hs
from benchmarks import common

PEERS = ("heatdiff", "grabcut")
# voxels above which the slowest baselines are skipped (minutes per run on 2 cores)
LARGE = {"random_walker": 2_000_000, "morph_chan_vese": 1_000_000, "morph_geodesic": 1_000_000}
SLOW = tuple(LARGE)
SUBSAMPLED = (*SLOW, "chan_vese")  # on sets of more than MANY items, run on every EVERY-th item
MANY, EVERY = 12, 3
RESULTS = Path(__file__).resolve().parent / "results" / "accuracy.md"


def all_methods():
    return [*hs.methods(), *PEERS]


def why_not(method, item):
    """Why ``method`` is not run on ``item`` (a short note), or None if it is."""
    if method == "heatdiff" and item.ndim != 2:
        return "2D only"
    if method == "heatdiff" and common.heatdiff_segmenter() is None:
        return "not installed"
    if method == "grabcut" and not (item.colour and item.ndim == 2):
        return "colour 2D only"
    if method == "chan_vese" and item.ndim != 2:
        return "2D only"
    if method in SLOW and item.start.size > LARGE[method]:
        return "skipped (> 2 min)"
    return None


def run_method(method, item, params=None):
    """Labels of ``method`` on ``item`` from its standard start."""
    if method == "heatdiff":
        mask, _ = common.run_heatdiff(common.heatdiff_segmenter(), common.grey255(item),
                                      item.start > 0)
        return mask.astype(np.uint8)
    if method == "grabcut":
        return common.run_grabcut(item.image, item.start)
    return hs.segment(item.image, item.start, method=method, channel_axis=item.channel_axis,
                      spacing=item.spacing, scope=item.scope, **(params or {}))


def evaluate(sets, methods, *, limit=None, params=None, verbose=False, out=None):
    """{set: {method: (mean IoU, median seconds) or note}} over the requested sets."""
    out = out or sys.stdout
    results = {}
    for name in sets:
        items = common.load_set(name, limit=limit)
        results[name] = {}
        for method in methods:
            scores, seconds, note = [], [], None
            subset = items[::EVERY] if method in SUBSAMPLED and len(items) > MANY else items
            for item in subset:
                note = why_not(method, item)
                if note:
                    break
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # peers' convergence warnings
                    labels, elapsed = common.timed(run_method, method, item,
                                                   (params or {}) if method == "heat" else None)
                scores.append(common.score(item, labels))
                seconds.append(elapsed)
                if verbose:
                    print(f"  {name}/{item.name} {method}: IoU {scores[-1]:.3f} "
                          f"({elapsed:.2f} s)", file=out, flush=True)
            results[name][method] = note or (float(np.mean(scores)), statistics.median(seconds),
                                              len(subset), len(items))
            if not verbose:
                print(f"  {name} {method}: {_cell(results[name][method])}", file=sys.stderr, flush=True)
    return results


def _cell(value):
    if isinstance(value, str):
        return value
    iou, seconds, used, total = value
    return f"{iou:.3f} ({seconds:.2f} s)" + (f" [{used}/{total}]" if used < total else "")


def report(results, methods, *, limit=None):
    """The results as Markdown: one row per method, one column per set."""
    sets = list(results)
    counts = {name: len(common.load_set(name, limit=limit)) for name in sets}
    header = ["method", *(f"{name} ({counts[name]})" for name in sets)]
    rows = [[method, *(_cell(results[name][method]) for name in sets)] for method in methods]
    return "\n".join([
        f"Mean IoU (median seconds per item) from the standard starts; {common.stamp()}.",
        f"Machine: {common.machine()} (timings vary with other load on the machine).",
        "",
        common.markdown_table(header, rows),
        "",
        "heat = `hs.segment` defaults; threshold_otsu = Otsu. heatdiff: JacobiThetaSegmenter"
        "(lambda_param=0.00025, dt=0.5), max_iter=20, on the grey image x255 (luminance for RGB), "
        "2D only. grabcut: OpenCV GC_INIT_WITH_RECT from the box, 5 iterations, random seed 0 (over seeds 0-4 the "
        "photo-set means span about 0.07: benchmarks/box_defaults.py), colour 2D only. "
        "morph_chan_vese and morph_geodesic are skipped on volumes above 1 M voxels, random_walker "
        "above 2 M (each run takes minutes here); they and chan_vese run on "
        f"every {EVERY}rd item only of sets with more than {MANY} items ([used/total] in the cell), "
        "to keep the whole run under 15 minutes on 2 cores.",
    ])


def _params(text):
    params = {}
    for pair in filter(None, (text or "").split(",")):
        key, _, value = pair.partition("=")
        try:
            params[key.strip()] = int(value) if value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            params[key.strip()] = value.strip()
    return params


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", help="comma-separated set names (default: every set present): "
                        + ", ".join(common.SETS))
    parser.add_argument("--methods", help="comma-separated methods (default: all): "
                        + ", ".join(all_methods()))
    parser.add_argument("--limit", type=int, help="only the first N items of each set")
    parser.add_argument("--params", help="parameters for method 'heat', e.g. lam=0.5,edge=0.3")
    parser.add_argument("--verbose", action="store_true", help="print the IoU of every item")
    parser.add_argument("--output", type=Path, default=RESULTS,
                        help=f"Markdown file to write (default {RESULTS}); '-' for none")
    args = parser.parse_args(argv)

    present = common.available_sets()
    sets = args.sets.split(",") if args.sets else present
    unknown = [s for s in sets if s not in common.SETS]
    if unknown:
        parser.error(f"unknown set(s) {unknown}; choose from {list(common.SETS)}")
    missing = [s for s in sets if s not in present]
    if missing:
        print(f"skipping absent set(s): {', '.join(missing)} (no data in {common.DATA})", file=sys.stderr)
    sets = [s for s in sets if s in present]
    methods = args.methods.split(",") if args.methods else all_methods()
    bad = [m for m in methods if m not in all_methods()]
    if bad:
        parser.error(f"unknown method(s) {bad}; choose from {all_methods()}")

    results = evaluate(sets, methods, limit=args.limit, params=_params(args.params),
                       verbose=args.verbose)
    text = report(results, methods, limit=args.limit)
    common.publish(text, args.output)
    return results


if __name__ == "__main__":
    main()
