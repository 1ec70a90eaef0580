"""Number of clicks to 85 / 90 % IoU (NoC), and box + corrective clicks, for heat and its peers.

The standard interactive-segmentation protocol (Xu et al. 2016; RITM's clicker),
with the click simulator of ``benchmarks/clicker.py``:

- ``clicks``: nothing predicted at first; each click goes where the result is most
  wrong; the method gets every click so far; up to ``--max-clicks`` (20) clicks.
  NoC@85 / NoC@90 is the first click count whose IoU reaches 85 / 90 % (the maximum if
  never), averaged over items; failures are the items that never reach 90 %. Also the
  mean IoU after 1, 3 and 5 clicks, the median seconds per click and the share of
  clicks that lowered the IoU. Every item gets all its clicks (a result that is
  already good may still be made worse); a run ends early only when no error is left
  to click on, and its last IoU then stands for the remaining clicks.
- ``box``: the object's filled bounding box first, then 5 corrective clicks; the mean
  IoU after the box and after each click.

``heat`` is called as ``hs.segment(image, start, seeds=<positive disks as label 1>,
background=<negative disks>, initial=<the last result, None before the first>,
scope="object")`` with ``start`` all zero (clicks), or with the filled box as
``start`` and ``scope="inside"`` (box; the first call has no marks). The peers
(``benchmarks/peers_interactive.py``) get the same clicks, each its own sequence from
its own results. Targets: the object (GrabCut's 255 band left out), the largest
nucleus of each DSB image and of the cells3d stack, the brain1 tumour.

Run from the project root::

    python -m benchmarks.noc                                  # every set present, both protocols
    python -m benchmarks.noc --sets natural2d_grabcut --methods grabcut,graphcut --limit 2
    python -m benchmarks.noc --protocol box --output -
"""

import argparse
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import napari_heatseg as hs
from benchmarks import common
from benchmarks.accuracy import LARGE
from benchmarks.clicker import ClickMarks, first_reaching, next_click
from benchmarks.peers_interactive import PEERS

RESULTS = Path(__file__).resolve().parent / "results" / "noc.md"
MAX_CLICKS = 20
BOX_CLICKS = 5
THRESHOLDS = (0.85, 0.90)
REPORTED_CLICKS = (1, 3, 5)
# (dataset, items or None for all, target: the "object" mask or its "largest" instance)
NOC_SETS = {
    "natural2d_grabcut": ("natural2d_grabcut", None, "object"),
    "natural2d_coco_mval": ("natural2d_coco_mval", None, "object"),
    "nuclei2d_dsb2018": ("nuclei2d_dsb2018", None, "largest"),
    "brain1": ("mri3d_pyradiomics", ("brain1",), "object"),
    "cells3d_nuclei": ("cells3d_nuclei", ("cells3d_nuclei",), "largest"),
}
METHODS = ("heat", *PEERS)
PUBLISHED = ("Published for context (GrabCut dataset, NoC@90; Xu et al. 2016 and later papers): "
             "graph cut 10.0, random walker 12.3, geodesic matting 14.6, GSC 9.1, ESC 9.2, "
             "DIOS 6.0, RITM 1.5.")


def load_items(name, *, limit=None):
    """The items of one NoC set as :class:`benchmarks.common.Item`.

    ``target`` is the object as 0/1 (255 kept as the ignored band), ``start`` its
    filled bounding box (the box protocol's start).
    """
    dataset, names, kind = NOC_SETS[name]
    names = names or sorted(p.stem for p in (common.DATA / dataset / "images").glob("*.tif"))
    items = []
    for item_name in names[:limit]:
        image, mask, spacing = common.read_item(dataset, item_name)
        if kind == "largest":
            ids, sizes = np.unique(mask[mask > 0], return_counts=True)
            target = (mask == ids[np.argmax(sizes)]).astype(np.uint8)
        else:
            target = np.where(mask == 255, 255, mask > 0).astype(np.uint8)
        box, _ = common.standard_start("box", target)
        channel_axis = -1 if image.ndim == mask.ndim + 1 else None
        items.append(common.Item(name, item_name, image, channel_axis, spacing, box, "inside",
                                 target, 255 if kind == "object" and (mask == 255).any() else None))
    return items


def available_sets():
    return [name for name, (dataset, _, _) in NOC_SETS.items()
            if (common.DATA / dataset / "images").is_dir()]


# ---------------------------------------------------------------- methods


def heat(item):
    """``hs.segment`` with the clicks as seeds/background and the last result as initial."""
    spatial = dict(channel_axis=item.channel_axis, spacing=item.spacing)

    def predict(*, positive, negative, box, previous):
        if box is not None and previous is None:
            return hs.segment(item.image, box.astype(np.uint8), scope="inside", **spatial)
        start = np.zeros(positive.shape, np.uint8) if box is None else box.astype(np.uint8)
        return hs.segment(item.image, start, seeds=positive.astype(np.uint8), background=negative,
                          initial=previous, scope="object" if box is None else "inside", **spatial)

    return predict


def heat_unavailable():
    """Why ``hs.segment`` cannot take clicks yet (the TypeError it raises), or None."""
    yy, xx = np.mgrid[:32, :32]
    image = ((yy - 16) ** 2 + (xx - 16) ** 2 < 64).astype(float)
    seeds = np.zeros(image.shape, np.uint8)
    seeds[15:18, 15:18] = 1
    background = np.zeros(image.shape, bool)
    background[:2] = True
    try:
        hs.segment(image, np.zeros(image.shape, np.uint8), seeds=seeds, background=background,
                   initial=None, scope="object")
    except TypeError as error:
        return str(error)
    return None


def why_not(method, item):
    """Why ``method`` is not run on ``item`` (a short note), or None if it is."""
    if method == "grabcut" and item.ndim != 2:
        return "2D only"
    if method in LARGE and item.start.size > LARGE[method]:
        return f"skipped (> {LARGE[method] / 1e6:g} M voxels: about a minute per click)"
    return None


def predictor(method, item):
    return heat(item) if method == "heat" else PEERS[method](item)


# ---------------------------------------------------------------- protocols


@dataclass
class Trace:
    """One item's run: IoU after each interaction and the seconds each call took."""

    ious: list = field(default_factory=list)
    seconds: list = field(default_factory=list)

    def lowered(self):
        """How many interactions lowered the IoU (the first click cannot: it starts from 0)."""
        return int(np.sum(np.diff(self.ious) < 0))


def _interact(predict, item, marks, trace, clicks, box=None, previous=None):
    """Up to ``clicks`` clicks, each from the current result; the trace grows by one per click."""
    truth = item.target == 1
    ignore = item.target == item.ignore if item.ignore is not None else None
    prediction = previous if previous is not None else np.zeros(truth.shape, np.uint8)
    for count in range(clicks):
        click = next_click(truth, prediction > 0, ignore=ignore, clicked=marks.clicked,
                           spacing=item.spacing)
        if click is None:  # nothing left to correct: the result stands for the remaining clicks
            trace.ious += [trace.ious[-1]] * (clicks - count)
            break
        marks.add(click)
        t0 = time.perf_counter()
        prediction = predict(positive=marks.positive, negative=marks.negative, box=box,
                             previous=previous)
        trace.seconds.append(time.perf_counter() - t0)
        previous = prediction
        trace.ious.append(common.score(item, prediction))
    return trace


def run_clicks(predict, item, max_clicks=MAX_CLICKS):
    """Protocol 1: clicks only, from nothing; ``trace.ious[k]`` is the IoU after k + 1 clicks."""
    marks = ClickMarks(item.start.shape, item.spacing)
    return _interact(predict, item, marks, Trace(), max_clicks)


def run_box(predict, item, clicks=BOX_CLICKS):
    """Protocol 2: the box, then corrective clicks; ``trace.ious[0]`` is the box's IoU."""
    box = item.start > 0
    marks = ClickMarks(box.shape, item.spacing)
    t0 = time.perf_counter()
    labels = predict(positive=marks.positive, negative=marks.negative, box=box, previous=None)
    trace = Trace([common.score(item, labels)], [time.perf_counter() - t0])
    return _interact(predict, item, marks, trace, clicks, box=box, previous=labels)


def evaluate(sets, methods, *, protocols=("clicks", "box"), limit=None, max_clicks=MAX_CLICKS,
             verbose=False):
    """{protocol: {set: {method: [Trace per item] or a note}}}."""
    unavailable = heat_unavailable() if "heat" in methods else None
    runs = {"clicks": lambda p, i: run_clicks(p, i, max_clicks), "box": run_box}
    results = {protocol: {} for protocol in protocols}
    for name in sets:
        items = load_items(name, limit=limit)
        for protocol in protocols:
            results[protocol][name] = {}
            for method in methods:
                if method == "heat" and unavailable:
                    results[protocol][name][method] = f"not available: {unavailable}"
                    continue
                traces, note = [], None
                for item in items:
                    note = why_not(method, item)
                    if note:
                        break
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # the solvers' convergence warnings
                        traces.append(runs[protocol](predictor(method, item), item))
                    if verbose:
                        print(f"  {protocol} {name}/{item.name} {method}: IoU "
                              + " ".join(f"{v:.2f}" for v in traces[-1].ious), file=sys.stderr,
                              flush=True)
                results[protocol][name][method] = note or traces
                print(f"  {protocol} {name} {method} done", file=sys.stderr, flush=True)
    return results


# ---------------------------------------------------------------- report


def _reported(max_clicks):
    return [k for k in REPORTED_CLICKS if k <= max_clicks]


def click_row(traces, max_clicks):
    """Cells of the clicks table for one set and method."""
    nocs = [[first_reaching(t.ious, th, max_clicks) for t in traces] for th in THRESHOLDS]
    failures = sum(all(v < THRESHOLDS[-1] for v in t.ious) for t in traces)
    after = [np.mean([t.ious[k - 1] for t in traces]) for k in _reported(max_clicks)]
    seconds = statistics.median(s for t in traces for s in t.seconds)
    lowered = sum(t.lowered() for t in traces) / max(sum(len(t.seconds) for t in traces), 1)
    return [*(f"{np.mean(n):.2f}" for n in nocs), f"{failures}/{len(traces)}",
            *(f"{v:.3f}" for v in after), f"{seconds:.3f}", f"{100 * lowered:.1f} %"]


def box_row(traces):
    """Cells of the box table for one set and method."""
    means = [np.mean([t.ious[k] for t in traces]) for k in range(len(traces[0].ious))]
    corrections = [s for t in traces for s in t.seconds[1:]]
    lowered = sum(t.lowered() for t in traces) / max(len(corrections), 1)
    return [*(f"{v:.3f}" for v in means), f"{statistics.median(t.seconds[0] for t in traces):.3f}",
            f"{statistics.median(corrections):.3f}" if corrections else "-",
            f"{100 * lowered:.1f} %"]


def report(results, *, max_clicks=MAX_CLICKS):
    """The results as Markdown, one table per protocol."""
    parts = [f"NoC benchmark, {common.stamp()}.",
             f"Machine: {common.machine()} (timings vary with other load on the machine)."]
    if "clicks" in results:
        header = ["set", "method", *(f"NoC@{int(100 * t)}" for t in THRESHOLDS),
                  f"failures (never {int(100 * THRESHOLDS[-1])} %)",
                  *(f"IoU@{k}" for k in _reported(max_clicks)), "s / click", "clicks lowering IoU"]
        rows = [_row(name, method, cell, lambda t: click_row(t, max_clicks), len(header))
                for name, by_method in results["clicks"].items() for method, cell in by_method.items()]
        parts += ["", f"### Clicks only (up to {max_clicks} clicks)", "",
                  common.markdown_table(header, rows)]
    if "box" in results:
        header = ["set", "method", "IoU box", *(f"+{k} click" for k in range(1, BOX_CLICKS + 1)),
                  "s box", "s / click", "clicks lowering IoU"]
        rows = [_row(name, method, cell, box_row, len(header))
                for name, by_method in results["box"].items() for method, cell in by_method.items()]
        parts += ["", f"### Box, then up to {BOX_CLICKS} corrective clicks", "",
                  common.markdown_table(header, rows)]
    parts += ["", "Clicks: disks of radius 5 px (3D: balls of 5 finest voxels, round with the spacing) "
              "at the deepest point of the largest error (benchmarks/clicker.py). Peers: "
              "benchmarks/peers_interactive.py; their per-image set-up (normalisation, edge weights) "
              "is not counted in the seconds, heat's is. " + PUBLISHED]
    return "\n".join(parts)


def _row(name, method, cell, cells, width):
    if isinstance(cell, str):
        return [name, method, cell, *([""] * (width - 3))]
    return [f"{name} ({len(cell)})", method, *cells(cell)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", help="comma-separated set names (default: every set present): "
                        + ", ".join(NOC_SETS))
    parser.add_argument("--methods", help="comma-separated methods (default: all): " + ", ".join(METHODS))
    parser.add_argument("--protocol", choices=("clicks", "box", "both"), default="both")
    parser.add_argument("--limit", type=int, help="only the first N items of each set")
    parser.add_argument("--max-clicks", type=int, default=MAX_CLICKS,
                        help=f"clicks per item in the clicks protocol (default {MAX_CLICKS})")
    parser.add_argument("--verbose", action="store_true", help="print every item's IoU sequence")
    parser.add_argument("--output", default=str(RESULTS),
                        help=f"Markdown file to write (default {RESULTS}); '-' for stdout only")
    args = parser.parse_args(argv)

    present = available_sets()
    sets = args.sets.split(",") if args.sets else present
    unknown = [s for s in sets if s not in NOC_SETS]
    if unknown:
        parser.error(f"unknown set(s) {unknown} in --sets; choose from {list(NOC_SETS)}")
    missing = [s for s in sets if s not in present]
    if missing:
        print(f"skipping absent set(s): {', '.join(missing)} (no data in {common.DATA})", file=sys.stderr)
    methods = args.methods.split(",") if args.methods else list(METHODS)
    bad = [m for m in methods if m not in METHODS]
    if bad:
        parser.error(f"unknown method(s) {bad} in --methods; choose from {list(METHODS)}")
    if args.max_clicks < 1:
        parser.error(f"--max-clicks must be at least 1, got {args.max_clicks}")
    protocols = ("clicks", "box") if args.protocol == "both" else (args.protocol,)

    results = evaluate([s for s in sets if s in present], methods, protocols=protocols,
                       limit=args.limit, max_clicks=args.max_clicks, verbose=args.verbose)
    text = report(results, max_clicks=args.max_clicks)
    common.publish(text, Path(args.output))
    return results


if __name__ == "__main__":
    main()
