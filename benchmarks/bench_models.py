"""Time to converge of the default region model vs the plain Chan-Vese (``model="mean"``) one.

The accuracy issue asks that the richer default model (``"gaussian"``) keeps the time to a
converged mask within 2x of the piecewise-constant model's. Both run through
``hs.evolve`` from the standard starts of every dev set, everything else at its default
(the ``mean`` model gets its own default ``lam``); the table gives, per set, the median
seconds and full-resolution iterations of each model, the median per-item ratio
default / mean, and the mean IoU of each (so a faster model is never read as a better one).

Run from the project root::

    python -m benchmarks.bench_models [--sets nuclei2d_dsb2018,brain1] [--limit N] [--repeat 3]
"""

import argparse
import statistics
import sys
import warnings

import napari_heatseg as hs
from benchmarks import common

MODELS = ("gaussian", "mean")


def run(item, model):
    """(labels, full-resolution iterations) of one item with one model."""
    labels, iterations = item.start, 0
    for iterations, labels, _ in hs.evolve(item.image, item.start, channel_axis=item.channel_axis,
                                           spacing=item.spacing, scope=item.scope, model=model):
        pass
    return labels, iterations


def measure(items, repeat):
    """Per model: lists of seconds, iterations and IoU over the items."""
    out = {model: {"seconds": [], "iterations": [], "iou": []} for model in MODELS}
    for item in items:
        for model in MODELS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                (labels, iterations), seconds = common.timed(run, item, model, repeat=repeat)
            out[model]["seconds"].append(seconds)
            out[model]["iterations"].append(iterations)
            out[model]["iou"].append(common.score(item, labels))
        print(f"  {item.set_name}/{item.name}: "
              + ", ".join(f"{m} {out[m]['seconds'][-1]:.2f} s" for m in MODELS), file=sys.stderr, flush=True)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(common.available_sets()),
                        help="comma-separated set names (default: every set present)")
    parser.add_argument("--limit", type=int, default=6, help="first N items of each set (default 6)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (median taken)")
    args = parser.parse_args(argv)
    rows = []
    for name in [s for s in args.sets.split(",") if s]:
        if name not in common.available_sets():
            print(f"skipping {name}: not found in {common.DATA}", file=sys.stderr)
            continue
        items = common.load_set(name, limit=args.limit)
        result = measure(items, args.repeat)
        ratios = [g / m for g, m in zip(result["gaussian"]["seconds"], result["mean"]["seconds"])]
        cells = [f"{name} ({len(items)})"]
        for model in MODELS:
            r = result[model]
            cells += [f"{statistics.median(r['seconds']):.2f}", f"{statistics.median(r['iterations']):g}",
                      f"{statistics.mean(r['iou']):.3f}"]
        cells.append(f"{statistics.median(ratios):.2f} (max {max(ratios):.2f})")
        rows.append(cells)
    header = ["set (items)", "gaussian s", "gaussian iterations", "gaussian IoU",
              "mean s", "mean iterations", "mean IoU", "time ratio gaussian / mean"]
    print(f"Default model (gaussian) vs plain Chan-Vese (mean), medians; {common.stamp()}.")
    print(f"Machine: {common.machine()}.\n")
    print(common.markdown_table(header, rows))


if __name__ == "__main__":
    main()
