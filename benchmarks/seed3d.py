"""A box on one slice seeds a 3D object: 3D IoU, ours against the old behaviour and slice propagation.

The start (issue 17): a filled box bounding the target in-plane on the middle slice of its
extent along the stack, nothing elsewhere; the file's spacing. Targets: brain1's tumour and
the largest cells3d nucleus. In the same run:

- ``ours``: ``hs.segment(volume, start, spacing=..., scope="inside")`` (:mod:`napari_heatseg.core.seeding`);
- ``old``: the same run without the seeding step (the box is a region one slice thick): the
  pieces of :func:`napari_heatseg.core.api.evolve` before it, called directly;
- ``propagate``: ``stack.segment_stack(volume, start, mode="propagate", spacing=...)`` from
  the same slice, with ``scope="inside"`` and with the automatic scope;
- ``object, blob``: ``hs.segment(volume, blob, spacing=..., scope="object")`` with a disk on
  the same slice (at the target's deepest point there, radius half that depth), for the
  record: the seeding does not change ``scope="object"`` yet.

A second table gives the median and lowest 3D IoU of ``ours`` and ``old`` over every
object of the 3D nuclei sets (cells3d and the synthetic, densely packed nuclei of
``nuclei_stardist_demo``), a box on each one's middle slice.

Run from the project root: ``python -m benchmarks.seed3d`` (the last run is in
``results/seed3d.md``).
"""

import time
import warnings
from functools import partial

import numpy as np

import napari_heatseg as hs
from benchmarks.common import (
    DATA,
    _ball_at_depth,
    machine,
    markdown_table,
    read_item,
    stamp,
)
from napari_heatseg.core import ictm, metrics, stack
from napari_heatseg.core.inputs import prepare
from napari_heatseg.core.scope import make_scope
from napari_heatseg.core.start_checks import check_start
from napari_heatseg.core.start_labels import restore_labels

CASES = (("mri3d_pyradiomics", "brain1", False), ("cells3d_nuclei", "cells3d_nuclei", True))
EVERY_OBJECT = (("cells3d_nuclei", "cells3d_nuclei"), ("nuclei_stardist_demo", "nuclei3d_synthetic"))


def target(mask, largest_instance):
    if not largest_instance:
        return mask > 0
    sizes = np.bincount(mask.ravel())
    sizes[0] = 0
    return mask == np.argmax(sizes)


def box_on_middle_slice(mask):
    slices = np.flatnonzero(mask.any(axis=(1, 2)))
    middle = (slices[0] + slices[-1]) // 2
    ys, xs = np.nonzero(mask[middle])
    start = np.zeros(mask.shape, np.uint8)
    start[middle, ys.min():ys.max() + 1, xs.min():xs.max() + 1] = 1
    return start, middle


def old_behaviour(image, start, spacing):
    """The heat method on the box as a one-slice region (no seeding along the stack)."""
    prepared = check_start(prepare(image, start, spacing=spacing, scope="inside"))
    phases = prepared.phases
    for _, phases, _ in ictm.threshold_dynamics(prepared, make_scope(prepared)):
        pass
    return restore_labels(phases, prepared)


def main():
    rows = []
    for dataset, item, largest in CASES:
        if not (DATA / dataset / "images" / f"{item}.tif").exists():
            print(f"{dataset}/{item} is not in ../shared/data; skipped.")
            continue
        image, mask, spacing = read_item(dataset, item)
        truth = target(mask, largest)
        start, middle = box_on_middle_slice(truth)
        blob = np.zeros_like(start)
        blob[middle] = _ball_at_depth(truth[middle], spacing[1:])
        runs = {
            "ours": partial(hs.segment, image, start, spacing=spacing, scope="inside"),
            "old": partial(old_behaviour, image, start, spacing),
            "propagate (inside)": partial(stack.segment_stack, image, start, mode="propagate", spacing=spacing,
                                          scope="inside"),
            "propagate (auto)": partial(stack.segment_stack, image, start, mode="propagate", spacing=spacing),
            "object, blob": partial(hs.segment, image, blob, spacing=spacing, scope="object"),
        }
        name = item if not largest else f"{item} (largest nucleus)"
        for method, run in runs.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                began = time.perf_counter()
                labels = run() > 0
                seconds = time.perf_counter() - began
            found = np.flatnonzero(labels.any(axis=(1, 2)))
            span = f"{found[0]}-{found[-1]}" if found.size else "none"
            rows.append([name, method, f"{metrics.iou(truth, labels):.3f}", span,
                         f"{int(labels.sum())}", f"{seconds:.2f}"])
        true_span = np.flatnonzero(truth.any(axis=(1, 2)))
        rows.append([name, f"(truth; box on slice {middle})", "1.000", f"{true_span[0]}-{true_span[-1]}",
                     f"{int(truth.sum())}", ""])
    print(f"A box on the middle slice seeds a 3D object; {stamp()}.")
    print(f"Machine: {machine()} (timings vary with other load on the machine).")
    print()
    print(markdown_table(["target", "method", "3D IoU", "slices", "voxels", "seconds"], rows))
    print()
    print(markdown_table(["set", "objects", "ours median", "ours lowest", "old median", "old lowest"],
                         every_object_rows()))


def every_object_rows():
    rows = []
    for dataset, item in EVERY_OBJECT:
        if not (DATA / dataset / "images" / f"{item}.tif").exists():
            continue
        image, mask, spacing = read_item(dataset, item)
        spacing = spacing or (1.0,) * mask.ndim
        scores = {"ours": [], "old": []}
        for value in np.unique(mask[mask > 0]):
            truth = mask == value
            if truth.any(axis=(1, 2)).sum() < 3:  # on fewer than 3 slices: no middle slice to grow from
                continue
            start, _ = box_on_middle_slice(truth)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scores["ours"].append(metrics.iou(truth, hs.segment(image, start, spacing=spacing, scope="inside") > 0))
                scores["old"].append(metrics.iou(truth, old_behaviour(image, start, spacing) > 0))
        rows.append([item, len(scores["ours"])] + [f"{f(scores[m]):.3f}" for m in ("ours", "old")
                                                   for f in (np.median, np.min)])
    return rows


if __name__ == "__main__":
    main()
