"""``scope="object"`` cannot leak far, and slice propagation from a ball (issue 17).

For every object run from the standard ball (a ball at the object's deepest point, radius
half that depth, design section 6) it prints the IoU and the two leak bounds of the issue:
the answer's volume over the true volume (target <= 3) and the largest distance of an
answer voxel to the true object, in mark depths (target <= 2). Cases:

- 3D: brain1's tumour; each compartment of the prostate phantom (its standard start, all
  compartments in one run); the three largest cells3d nuclei (one run each);
- 2D blobs (the object scope is also used for blobs in 2D): the object of each GrabCut
  photo, and the three largest nuclei of the first 10 DSB 2018 images (one run each);
- slice by slice (``stack.segment_stack``, ``mode="propagate"``, ``scope="object"``): the
  bundled mri3d sample from its ball, and the three cells3d nuclei, with where and why the
  propagation stopped.

It also times brain1 from its ball (median of 3 warm runs; target 0.5 s). Run from the
project root: ``python -m benchmarks.leak`` (the analysis, before and after, is in
``results/leak.md``; run it with ``PYTHONPATH`` pointing at another checkout's ``src`` to
compare). ``--sweep 0.5,2 1,2 ...`` prints, instead, the mean IoU per set for settings of the
neck cut and the first frontier (``scope.NECK``, ``reach.START``), to choose them
leave-one-set-out; the phantoms' side is ``tests/core/test_leak_phantoms.py``.
"""

import argparse
import inspect
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

import napari_heatseg as hs
from benchmarks.common import DATA, _ball_at_depth, load_set, machine, markdown_table, publish, read_item, stamp
from napari_heatseg.core import stack
from napari_heatseg.core.morphology import depth

RESULTS = Path(__file__).resolve().parent / "results" / "leak.md"


def bounds(truth, answer, mark, spacing):
    """(IoU, answer volume / true volume, farthest answer voxel from the truth in mark depths)."""
    iou = (truth & answer).sum() / max((truth | answer).sum(), 1)
    far = ndi.distance_transform_edt(~truth, sampling=spacing)[answer].max() if answer.any() else 0.0
    return iou, answer.sum() / truth.sum(), far / depth(mark, spacing)


def _quiet(call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call()


def _row(case, scores):
    iou, volume, far = scores
    ok = "yes" if volume <= 3 and far <= 2 else "**no**"
    return [case, f"{iou:.3f}", f"{volume:.2f}", f"{far:.2f}", ok]


def object_scores():
    """``{case: (IoU, volume ratio, farthest)}`` of the 3D objects from their standard balls."""
    scores = {}
    for set_name in ("brain1", "prostate_phantom"):
        for item in load_set(set_name):
            spacing = item.spacing or (1.0,) * item.ndim
            answer = _quiet(lambda: hs.segment(item.image, item.start, spacing=spacing, scope="object"))
            for value in np.unique(item.start[item.start > 0]):
                name = item.name if set_name == "brain1" else f"{item.name} label {value}"
                scores[name] = bounds(item.target == value, answer == value, item.start == value, spacing)
    for truth, image, spacing, name in _cells3d_nuclei():
        mark = _ball_at_depth(truth, spacing)
        answer = _quiet(lambda: hs.segment(image, mark.astype(np.uint8), spacing=spacing, scope="object")) > 0
        scores[name] = bounds(truth, answer, mark, spacing)
    return scores


def _cells3d_nuclei(n=3):
    if not (DATA / "cells3d_nuclei" / "images" / "cells3d_nuclei.tif").exists():
        return []
    image, mask, spacing = read_item("cells3d_nuclei", "cells3d_nuclei")
    sizes = np.bincount(mask.ravel())
    sizes[0] = 0
    return [(mask == value, image, spacing, f"cells3d nucleus {value} ({rank + 1}. largest)")
            for rank, value in enumerate(np.argsort(sizes)[::-1][:n])]


def blob_scores(n_nuclei_images=10):
    """``{set: [(IoU, volume ratio, farthest), ...]}`` of 2D objects, each from a ball inside it."""
    grabcut, nuclei = [], []
    for item in load_set("natural2d_grabcut"):
        truth = item.target == 1
        mark = _ball_at_depth(truth, (1.0, 1.0))
        answer = _quiet(lambda: hs.segment(item.image, mark.astype(np.uint8), channel_axis=-1, scope="object")) > 0
        counted = item.target != 255
        grabcut.append(bounds(truth, answer & counted, mark, (1.0, 1.0)))
    for name in sorted(p.stem for p in (DATA / "nuclei2d_dsb2018" / "images").glob("*.tif"))[:n_nuclei_images]:
        image, mask, _ = read_item("nuclei2d_dsb2018", name)
        ids, sizes = np.unique(mask[mask > 0], return_counts=True)
        for value in ids[np.argsort(sizes)[::-1][:3]]:
            truth = mask == value
            mark = _ball_at_depth(truth, (1.0, 1.0))
            answer = _quiet(lambda: hs.segment(image, mark.astype(np.uint8), scope="object")) > 0
            nuclei.append(bounds(truth, answer, mark, (1.0, 1.0)))
    return {"natural2d_grabcut (the object of each photo)": grabcut,
            f"nuclei2d_dsb2018 (3 largest nuclei of the first {n_nuclei_images} images)": nuclei}


def _within(scores):
    return sum(volume <= 3 and far <= 2 for _, volume, far in scores)


def blob_rows():
    """Median (lowest) IoU and the share within both bounds, per 2D set."""
    return [[case, len(scores), f"{np.median([s[0] for s in scores]):.3f}", f"{np.min([s[0] for s in scores]):.3f}",
             f"{_within(scores)}/{len(scores)}"] for case, scores in blob_scores().items()]


def sweep(settings):
    """One line per ``"NECK,START"`` setting: mean IoU (objects within bounds) per set.

    Sets the module constants :data:`napari_heatseg.core.scope.NECK` (0: no neck cut) and
    :data:`napari_heatseg.core.reach.START` for the run, to choose them leave-one-set-out.
    """
    from napari_heatseg.core import reach, scope

    lines = []
    for setting in settings:
        neck, start = (float(v) for v in setting.split(","))
        scope.NECK, reach.START = neck or None, start
        objects = object_scores()
        groups = {"brain1": [v for k, v in objects.items() if k == "brain1"],
                  "prostate": [v for k, v in objects.items() if k.startswith("prostate")],
                  "cells3d": [v for k, v in objects.items() if k.startswith("cells3d")], **blob_scores()}
        lines.append(f"NECK {neck:g}, START {start:g}: " + " | ".join(
            f"{name.split(' (')[0]} {np.mean([s[0] for s in scores]):.3f} ({_within(scores)}/{len(scores)})"
            for name, scores in groups.items()))
    return lines


def propagation_rows():
    from napari_heatseg.samples import load_sample

    sample = load_sample("mri3d")
    cases = [("mri3d sample (bundled)", sample["image"], sample["truth"] > 0, sample["spacing"], sample["start"])]
    cases += [(name, image, truth, spacing, _ball_at_depth(truth, spacing).astype(np.uint8))
              for truth, image, spacing, name in _cells3d_nuclei()]
    rows = []
    for name, image, truth, spacing, start in cases:
        began = time.perf_counter()
        told = {"return_stops": True} if "return_stops" in inspect.signature(stack.segment_stack).parameters else {}
        result = _quiet(lambda: stack.segment_stack(image, start, mode="propagate", spacing=spacing, scope="object",
                                                    **told))
        seconds = time.perf_counter() - began
        labels, stops = result if isinstance(result, tuple) else (result, None)
        found = labels > 0
        iou = (truth & found).sum() / (truth | found).sum()
        span = np.flatnonzero(truth.any(axis=(1, 2)))
        told = "not told" if stops is None else "; ".join(f"slice {s.index}: {s.reason}" for s in stops) or "none"
        rows.append([name, f"{iou:.3f}", f"{span[0]}-{span[-1]}", told, f"{seconds:.2f}"])
    return rows


def brain1_seconds(repeat=3):
    item = load_set("brain1")[0]
    run = lambda: _quiet(lambda: hs.segment(item.image, item.start, spacing=item.spacing, scope="object"))  # noqa: E731
    run()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("-"),
                        help=f"where to write the report (default '-': print only; the analysis is in {RESULTS.name})")
    parser.add_argument("--sweep", nargs="+", metavar="NECK,START",
                        help="instead: mean IoU per set for each setting of scope.NECK and reach.START")
    args = parser.parse_args(argv)
    if args.sweep:
        print("\n".join(sweep(args.sweep)))
        return
    text = "\n".join([
        f"scope='object' leak bounds and slice propagation from a ball (issue 17); {stamp()}.",
        f"Machine: {machine()} (timings vary with other load on the machine).",
        f"Package: {Path(hs.__file__).parent}.",
        "",
        "From the standard ball, `hs.segment(..., scope='object')` (bounds: volume <= 3x, farthest <= 2 mark depths):",
        "",
        markdown_table(["object", "IoU", "volume / true", "farthest (mark depths)", "within bounds"],
                       [_row(case, scores) for case, scores in object_scores().items()]),
        "",
        "2D blobs, a ball in each object:",
        "",
        markdown_table(["set", "objects", "median IoU", "lowest IoU", "within bounds"], blob_rows()),
        "",
        "Slice by slice from a ball (`stack.segment_stack(mode='propagate', scope='object')`):",
        "",
        markdown_table(["volume", "3D IoU", "true slices", "stops told", "seconds"], propagation_rows()),
        "",
        f"brain1 from its ball: {brain1_seconds():.2f} s (median of 3 warm runs).",
    ])
    publish(text, args.output)


if __name__ == "__main__":
    main()
