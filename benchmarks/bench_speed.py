"""Speed benchmark: time to convergence and per iteration, napari-heatseg vs its peers, one run.

Peers: heatdiff's ``JacobiThetaSegmenter`` (on the image x255, the only scale where
it works), scikit-image ``chan_vese`` and ``morphological_chan_vese``. Every method
but ``chan_vese`` starts from the same centred square (side 1/4 of the image) on a
real image resized to 256², 512² and 1024² (scikit-image's ``camera``), and on a 3D crop of
``cells3d_nuclei`` (2D-only peers are skipped there). Ratios are ours / peer, so
below 1 means we are faster.

"heat" runs ``hs.evolve`` with its defaults except ``scope="all"`` (the peers are
global two-phase methods); its iterations are the full-resolution steps ``evolve``
yields (the coarse-to-fine pre-solve is included in the time, not in the count).
``morphological_chan_vese`` has no convergence test: it is stopped at the first
iteration that changes no pixel or returns to the state of two iterations before
(through ``iter_callback``), at most 150 iterations. ``chan_vese`` starts from its
default checkerboard level set (from a square, its RMS-change test stops it after
one iteration at 512², which would time nothing) and stops on its own test
(``tol=1e-3``) or at 200 iterations. Iteration counts at a cap are marked "(cap)":
then the time is a lower bound of the time to converge. Each timing is the median
of ``--repeat`` runs, except runs longer than 20 s, which are timed once.

Run from the project root::

    python -m benchmarks.bench_speed [--sizes 256,512,1024] [--repeat 3] [--no-3d]
"""

import argparse
import sys
import warnings

import numpy as np
from skimage import segmentation, transform

import napari_heatseg as hs
from benchmarks import common

MCV_MAX_ITER = 150
CV_MAX_ITER = 200
LONG = 20.0  # seconds: a run this long is not repeated


def real_image_2d():
    """A real 2D grey image in [0, 1] and its name: scikit-image's ``camera`` (512²).

    A photo with several grey levels, so every method needs real iterations; on the
    dev nuclei images most peers stop after a step or two from a centred square.
    """
    from skimage import data

    image, name = data.camera().astype(np.float64), "scikit-image camera (512², photo)"
    return (image - image.min()) / (image.max() - image.min()), name


def volume_3d():
    """A 3D grey volume in [0, 1] (a crop of cells3d_nuclei) and its name, or (None, None)."""
    if "cells3d_nuclei" not in common.available_sets():
        return None, None
    image, _, _ = common.read_item("cells3d_nuclei", "cells3d_nuclei")
    image = image[14:46, 64:192, 64:192].astype(np.float64)
    return (image - image.min()) / (image.max() - image.min()), f"cells3d_nuclei crop {image.shape}"


def centred_square(shape):
    """A centred square (cube) of side 1/4 of each axis."""
    start = np.zeros(shape, np.uint8)
    start[tuple(slice(n * 3 // 8, n * 3 // 8 + max(n // 4, 1)) for n in shape)] = 1
    return start


class _Converged(Exception):
    pass


def run_heat(image, start):
    steps = sum(1 for _ in hs.evolve(image, start, scope="all"))
    return steps


def run_heatdiff(image, start, segmenter_class):
    _, iterations = common.run_heatdiff(segmenter_class, image * 255.0, start)
    return iterations


def run_chan_vese(image, start):
    result = segmentation.chan_vese(image, max_num_iter=CV_MAX_ITER,
                                    extended_output=True)  # its own checkerboard start
    return len(result[2])


def run_morph_chan_vese(image, start):
    count = [0]
    previous = []

    def stop_when_still(level_set):
        count[0] += 1
        if any(np.array_equal(level_set, p) for p in previous):  # still, or flipping back
            raise _Converged
        previous[:] = [previous[-1], np.array(level_set, copy=True)] if previous else [
            np.array(level_set, copy=True)]

    try:
        segmentation.morphological_chan_vese(image, MCV_MAX_ITER, init_level_set=start,
                                             iter_callback=stop_when_still)
    except _Converged:
        pass
    return count[0] - 1  # the first call shows the start


def measure(image, start, repeat, segmenter_class):
    """{method: (median seconds, iterations)} for one image."""
    runners = {"heat": run_heat, "chan_vese": run_chan_vese, "morph_chan_vese": run_morph_chan_vese}
    if segmenter_class is not None:
        runners["heatdiff"] = lambda i, s: run_heatdiff(i, s, segmenter_class)
    results = {}
    for method, runner in runners.items():
        if method in ("heatdiff", "chan_vese") and image.ndim != 2:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            iterations, seconds = common.timed(runner, image, start)
            if repeat > 1 and seconds < LONG:
                iterations, seconds = common.timed(runner, image, start, repeat=repeat)
        results[method] = (seconds, iterations)
        print(f"  {image.shape} {method}: {seconds:.3f} s, {iterations} iterations",
              file=sys.stderr, flush=True)
    return results


def report(table, image_name, volume_name, repeat):
    peers = ("heatdiff", "chan_vese", "morph_chan_vese")
    header = ["image", "method", "iterations", "time to converge (s)", "per iteration (ms)",
              "ours / peer (total)", "ours / peer (per iteration)"]
    rows = []
    for label, results in table:
        ours_time, ours_iter = results["heat"]
        for method in ("heat", *peers):
            if method not in results:
                rows.append([label, method, "n/a", "n/a (2D only)", "", "", ""])
                continue
            seconds, iterations = results[method]
            per_iter = seconds / max(iterations, 1)
            ratio_total = ratio_iter = ""
            if method != "heat":
                ratio_total = f"{ours_time / seconds:.2f}"
                ratio_iter = f"{(ours_time / max(ours_iter, 1)) / per_iter:.2f}"
            capped = (method, iterations) in (("chan_vese", CV_MAX_ITER),
                                              ("morph_chan_vese", MCV_MAX_ITER))
            rows.append([label, method, f"{iterations} (cap)" if capped else iterations, f"{seconds:.3f}", f"{1000 * per_iter:.1f}",
                         ratio_total, ratio_iter])
    return "\n".join([
        f"Speed from a centred square, median of {repeat} runs (1 if > {LONG:.0f} s); {common.stamp()}.",
        f"Machine: {common.machine()} (timings vary with other load on the machine).",
        f"2D: {image_name}, resized. 3D: {volume_name or 'absent'}.",
        "",
        common.markdown_table(header, rows),
    ])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,512,1024", help="2D sizes (square side)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (median taken)")
    parser.add_argument("--no-3d", action="store_true", help="skip the 3D volume")
    args = parser.parse_args(argv)

    segmenter_class = common.heatdiff_segmenter()
    if segmenter_class is None:
        print("heatdiff is not installed (pip install --no-deps heatdiff==0.1.3): skipped",
              file=sys.stderr)
    image, image_name = real_image_2d()
    table = []
    for size in (int(s) for s in args.sizes.split(",")):
        resized = transform.resize(image, (size, size), order=1, anti_aliasing=size < min(image.shape))
        table.append((f"{size}²", measure(resized, centred_square(resized.shape), args.repeat,
                                          segmenter_class)))
    volume, volume_name = (None, None) if args.no_3d else volume_3d()
    if volume is not None:
        table.append(("3D " + "x".join(map(str, volume.shape)),
                      measure(volume, centred_square(volume.shape), args.repeat, segmenter_class)))
    text = report(table, image_name, volume_name, args.repeat)
    print(text)
    return table


if __name__ == "__main__":
    main()
