"""Instance benchmark: F1@0.5 and mean AP per nuclei set, ours against the classical pipelines.

Ours: ``hs.segment(image, start, scope="all", spacing=...)`` from the standard start
(balls in the 3 largest nuclei, ``common.standard_start("nuclei", ...)``), then
``instances(foreground, spacing=..., marks=start)``: the call that
``hs.segment(..., scope="all", instances=True)`` makes. Peers in the same run, on the grey
image: Otsu + connected components, and Otsu + distance-transform watershed (scikit-image's
classical pipeline: markers at ``peak_local_max`` of the distance transform, watershed of its
negative inside the mask). Both peers drop components below a fixed size first, as ours does.

Run from the project root::

    python -m benchmarks.instances                      # every set, writes results/instances.md
    python -m benchmarks.instances --sets nuclei2d_dsb2018 --limit 5 --output -
"""

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.filters import threshold_otsu
from skimage.segmentation import watershed

import napari_heatseg as hs
from benchmarks import common
from napari_heatseg.core import metrics
from napari_heatseg.core.instances import instances

RESULTS = Path(__file__).resolve().parent / "results" / "instances.md"
SETS = ("nuclei2d_dsb2018", "nuclei_stardist_demo", "nuclei3d_synthetic", "cells3d_nuclei")
# the peers' fixed parameters, chosen once over all sets (see results/instances.md)
PEER_MIN_DISTANCE = 7  # voxels between two watershed markers
PEER_MIN_SIZE = {2: 30, 3: 150}  # voxels; smaller Otsu components are dropped
METHODS = ("ours", "otsu_cc", "otsu_watershed")
TRUTH_SPLIT = "instances of the true foreground"  # the split alone, on a perfect foreground
REPEAT = 3  # timings are the median of this many runs


def load(name, *, limit=None):
    """The items of one instance set with their standard starts and instance ground truth.

    ``nuclei3d_synthetic`` is the 3D item of ``nuclei_stardist_demo`` (the accuracy
    benchmark's set of that name holds its 2D image only).
    """
    if name == "nuclei3d_synthetic":
        dataset, names = "nuclei_stardist_demo", ["nuclei3d_synthetic"]
    else:
        spec = common.SETS[name]
        dataset = spec.dataset
        names = spec.items or sorted(p.stem for p in (common.DATA / dataset / "images").glob("*.tif"))
    items = []
    for item in names[:limit]:
        image, mask, spacing = common.read_item(dataset, item)
        start, target = common.standard_start("nuclei", mask, spacing)
        channel_axis = -1 if image.ndim == mask.ndim + 1 else None
        items.append((common.Item(name, item, image, channel_axis, spacing, start, "all", target, None),
                      mask))
    return items


def available(name):
    dataset = "nuclei_stardist_demo" if name == "nuclei3d_synthetic" else common.SETS[name].dataset
    return (common.DATA / dataset / "images").is_dir()


def otsu_foreground(item):
    """Otsu's threshold of the grey image, components below ``PEER_MIN_SIZE`` dropped."""
    grey = common.grey255(item)
    mask = grey > threshold_otsu(grey)
    components, _ = ndi.label(mask)
    sizes = np.bincount(components.ravel())
    kept = sizes >= PEER_MIN_SIZE[mask.ndim]
    kept[0] = False
    return kept[components], components * kept[components]


def otsu_watershed(item):
    """The classical distance-transform watershed on Otsu's mask (fixed parameters)."""
    mask, components = otsu_foreground(item)
    distance = ndi.distance_transform_edt(mask, sampling=item.spacing)
    peaks = peak_local_max(distance, min_distance=PEER_MIN_DISTANCE, labels=components,
                           exclude_border=False)
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return watershed(-distance, markers, mask=mask)


def run_item(item, truth, *, repeat=REPEAT):
    """Scores and times (median of ``repeat`` runs) of every method on one item."""
    result, seconds_segment = common.timed(hs.segment, item.image, item.start, scope="all",
                                           spacing=item.spacing, repeat=repeat)
    foreground = result > 0
    ours, seconds_split = common.timed(instances, foreground, spacing=item.spacing,
                                       marks=item.start, repeat=repeat)
    labels = {"ours": ours, "otsu_cc": otsu_foreground(item)[1], "otsu_watershed": otsu_watershed(item),
              TRUTH_SPLIT: instances(truth > 0, spacing=item.spacing, marks=item.start)}
    row = {method: metrics.instance_scores(truth, labels[method]) for method in (*METHODS, TRUTH_SPLIT)}
    row["iou_segment"] = metrics.iou(truth > 0, foreground)
    row["iou_instances"] = metrics.iou(truth > 0, ours > 0)
    row["seconds_segment"] = seconds_segment
    row["seconds_split"] = seconds_split
    return row


def evaluate(sets, *, limit=None, verbose=False, out=sys.stderr):
    """{set: [row per item]} (see :func:`run_item`)."""
    results = {}
    for name in sets:
        results[name] = []
        loaded = load(name, limit=limit)
        if loaded:  # load the compiled loops and caches before timing anything
            run_item(*loaded[0], repeat=1)
        for item, truth in loaded:
            row = run_item(item, truth)
            results[name].append(row)
            if verbose:
                print(f"  {name}/{item.name}: " + ", ".join(
                    f"{m} F1 {row[m]['f1']:.3f}" for m in METHODS)
                    + f"; split {row['seconds_split']:.3f} s, segment {row['seconds_segment']:.3f} s",
                    file=out, flush=True)
    return results


def _mean(rows, method, key):
    return float(np.mean([row[method][key] for row in rows]))


def _per_set(results, label, summary, fmt):
    """A table row: ``label``, then ``summary(rows)`` of every set formatted with ``fmt``."""
    return [label, *(fmt.format(summary(rows)) for rows in results.values())]


def report(results):
    """Markdown: F1@0.5 / mean AP per set and method, then foreground IoU and times for ours."""
    header = ["method", *(f"{name} ({len(rows)})" for name, rows in results.items())]
    scores = [[method, *(f"{_mean(rows, method, 'f1'):.3f} / {_mean(rows, method, 'mean_ap'):.3f}"
                         for rows in results.values())] for method in (*METHODS, TRUTH_SPLIT)]
    counts = [_per_set(results, method, lambda rows, m=method: np.mean(
        [r[m]["count_error"] / r[m]["n_true"] for r in rows]), "{:+.2f}") for method in METHODS]
    ours = [
        _per_set(results, 'foreground IoU, scope="all"',
                 lambda rows: np.mean([r["iou_segment"] for r in rows]), "{:.3f}"),
        _per_set(results, "foreground IoU, after instances",
                 lambda rows: np.mean([r["iou_instances"] for r in rows]), "{:.3f}"),
        _per_set(results, "median seconds, segment",
                 lambda rows: statistics.median(r["seconds_segment"] for r in rows), "{:.3f}"),
        _per_set(results, "median seconds, instances",
                 lambda rows: statistics.median(r["seconds_split"] for r in rows), "{:.3f}"),
        _per_set(results, "instances / segment (median of ratios)",
                 lambda rows: statistics.median(r["seconds_split"] / r["seconds_segment"] for r in rows),
                 "{:.2f}"),
    ]
    return "\n".join([
        f"Instances from the standard nuclei starts; {common.stamp()}.",
        f"Machine: {common.machine()} (timings vary with other load on the machine).",
        "",
        "F1 at IoU 0.5 / DSB2018 mean AP (IoU 0.5:0.05:0.95), mean over the items of each set:",
        "",
        common.markdown_table(header, scores),
        "",
        "Mean relative count error (found - true) / true:",
        "",
        common.markdown_table(header, counts),
        "",
        "Ours: foreground and time of the split against the segmentation (same run):",
        "",
        common.markdown_table(["", *header[1:]], ours),
        "",
        "ours = `hs.segment(image, start, scope=\"all\", spacing=...)` then `instances(result > 0, "
        "spacing=..., marks=start)` with its defaults. The last row splits the ground truth's own "
        "foreground (`mask > 0`) with the same call: what the split does given a perfect foreground, "
        "not a method one can run. otsu_cc = Otsu's threshold of the grey image, "
        "connected components; otsu_watershed = the same mask split by the watershed of the negative "
        f"distance transform (physical spacing) from `peak_local_max(min_distance={PEER_MIN_DISTANCE})` "
        "markers. Both peers drop components below "
        f"{PEER_MIN_SIZE[2]} pixels (2D) / {PEER_MIN_SIZE[3]} voxels (3D). `cells3d_nuclei`'s labels come "
        "from a classical pipeline, not manual annotation.",
    ])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", help="comma-separated set names (default: every set present): "
                        + ", ".join(SETS))
    parser.add_argument("--limit", type=int, help="only the first N items of each set")
    parser.add_argument("--verbose", action="store_true", help="print the scores of every item")
    parser.add_argument("--output", type=Path, default=RESULTS,
                        help=f"Markdown file to write (default {RESULTS}); '-' for none")
    args = parser.parse_args(argv)
    sets = args.sets.split(",") if args.sets else list(SETS)
    unknown = [s for s in sets if s not in SETS]
    if unknown:
        parser.error(f"unknown set(s) {unknown}; choose from {list(SETS)}")
    absent = [s for s in sets if not available(s)]
    if absent:
        print(f"skipping absent set(s): {', '.join(absent)} (no data in {common.DATA})", file=sys.stderr)
    results = evaluate([s for s in sets if s not in absent], limit=args.limit, verbose=args.verbose)
    text = report(results)
    common.publish(text, args.output)
    return results


if __name__ == "__main__":
    main()
