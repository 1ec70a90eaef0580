"""Fill between slices: 3D IoU of ITK's contour interpolation alone and of ours (interpolation + heat refit).

The protocol (issue 17): the ground truth on 3 slices along axis 0, at 25, 50 and 75 % of
the object's extent along that axis, nothing elsewhere; the file's spacing. In the same run:

- ``interpolation``: ``hs.fill_between_slices(..., refit=False)``, ITK's
  ``MorphologicalContourInterpolator`` alone (what 3D Slicer's "Fill between slices" does);
- ``ours``: ``hs.fill_between_slices(...)``, the interpolation refitted by the heat method with
  the annotated slices fixed.

Targets: brain1's tumour (6.5 mm slices), the largest cells3d nucleus, and a noisy synthetic
ellipsoid; then the median and lowest over every cells3d nucleus on at least 9 slices. The
first call starts ITK's worker process (its modules take seconds to load); that time is
given apart, and the table's times are of warm calls.

Run from the project root: ``python -m benchmarks.fill_between`` (the last run is in
``results/fill_between.md``).
"""

import time
import warnings

import numpy as np

import napari_heatseg as hs
from benchmarks.common import DATA, machine, markdown_table, read_item, stamp
from napari_heatseg.core import metrics

FRACTIONS = (0.25, 0.5, 0.75)


def annotated_slices(truth):
    """The truth on the slices at ``FRACTIONS`` of its extent along axis 0, and their indices."""
    present = np.flatnonzero(truth.any(axis=(1, 2)))
    slices = sorted({int(round(present[0] + f * (present[-1] - present[0]))) for f in FRACTIONS})
    annotated = np.zeros(truth.shape, np.uint8)
    annotated[slices] = truth[slices]
    return annotated, slices


def phantom():
    """A noisy ellipsoid (40 x 64 x 64, contrast 0.7, noise 0.25); the seed is result-bearing."""
    z, y, x = np.ogrid[:40, :64, :64]
    truth = ((z - 20) / 14) ** 2 + ((y - 30) / 16) ** 2 + ((x - 34) / 11) ** 2 < 1
    image = np.where(truth, 1.0, 0.3) + np.random.default_rng(0).normal(0, 0.25, truth.shape)
    return image, truth, (1.0, 1.0, 1.0)


def run(image, truth, spacing):
    """(IoU alone, IoU ours, seconds alone, seconds ours, annotated slices kept) for one target."""
    annotated, slices = annotated_slices(truth)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        began = time.perf_counter()
        alone = hs.fill_between_slices(image, annotated, spacing=spacing, refit=False)
        middle = time.perf_counter()
        ours = hs.fill_between_slices(image, annotated, spacing=spacing)
        seconds = (middle - began, time.perf_counter() - middle)
    kept = bool(np.array_equal(alone[slices], annotated[slices]) and np.array_equal(ours[slices], annotated[slices]))
    return metrics.iou(truth, alone > 0), metrics.iou(truth, ours > 0), *seconds, kept, slices


def targets():
    """(name, image, truth, spacing) of each case whose data is present."""
    found = []
    if (DATA / "mri3d_pyradiomics" / "images" / "brain1.tif").exists():
        image, mask, spacing = read_item("mri3d_pyradiomics", "brain1")
        found.append(("brain1 (tumour)", image, mask > 0, spacing))
    if (DATA / "cells3d_nuclei" / "images" / "cells3d_nuclei.tif").exists():
        image, mask, spacing = read_item("cells3d_nuclei", "cells3d_nuclei")
        sizes = np.bincount(mask.ravel())
        sizes[0] = 0
        found.append(("cells3d (largest nucleus)", image, mask == np.argmax(sizes), spacing))
    found.append(("synthetic ellipsoid", *phantom()))
    return found


def every_nucleus_row():
    if not (DATA / "cells3d_nuclei" / "images" / "cells3d_nuclei.tif").exists():
        return None
    image, mask, spacing = read_item("cells3d_nuclei", "cells3d_nuclei")
    scores = {"alone": [], "ours": []}
    for value in np.unique(mask[mask > 0]):
        truth = mask == value
        if truth.any(axis=(1, 2)).sum() < 9:  # too few slices to leave some unannotated between 3
            continue
        alone, ours, *_ = run(image, truth, spacing)
        scores["alone"].append(alone)
        scores["ours"].append(ours)
    return ["cells3d (every nucleus on >= 9 slices)", len(scores["ours"])] + [
        f"{f(scores[m]):.3f}" for m in ("alone", "ours") for f in (np.median, np.min)]


def main():
    cases = targets()
    began = time.perf_counter()
    run(*cases[-1][1:])  # starts ITK's worker process and loads the solver's compiled loops
    start_up = time.perf_counter() - began
    rows = []
    for name, image, truth, spacing in cases:
        alone, ours, alone_s, ours_s, kept, slices = run(image, truth, spacing)
        rows.append([name, ", ".join(map(str, slices)), f"{alone:.3f}", f"{ours:.3f}", f"{ours - alone:+.3f}",
                     f"{alone_s:.2f}", f"{ours_s:.2f}", "yes" if kept else "NO"])
    print(f"Fill between slices from 3 ground-truth slices (25/50/75 % of the extent along axis 0); {stamp()}.")
    print(f"Machine: {machine()} (timings vary with other load on the machine).")
    print(f"ITK's worker process and the first run: {start_up:.1f} s (once per session).")
    print()
    print(markdown_table(["target", "annotated slices", "ITK interpolation IoU", "ours IoU", "gain",
                          "interpolation s", "ours s", "annotated slices kept"], rows))
    row = every_nucleus_row()
    if row is not None:
        print()
        print(markdown_table(["set", "objects", "interpolation median", "interpolation lowest", "ours median",
                              "ours lowest"], [row]))


if __name__ == "__main__":
    main()
