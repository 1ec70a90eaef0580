"""Do the default parameters generalise? Leave-one-out over images, and the optimum per set.

The default ``lam`` (the weight of the region fit against boundary length, see
``napari_heatseg.core.ictm.default_parameters``) was chosen on the development sets.
If it is tuned to those exact images, an image it was not chosen on will score lower.
This script runs ``heat`` on every item of every set at the default ``lam`` times
0.25, 0.5, 1, 2 and 4, then reports per set:

- IoU at the default;
- leave-one-out IoU (sets with several items): each item is scored at the factor that
  is best on the *other* items of its set, as if it were a new image;
- the best factor for the set in hindsight and its IoU (how much a per-set tuning
  would gain over the one default).

Run from the project root: ``python -m benchmarks.generalisation [--sets a,b] [--limit N]``.
"""

import argparse

import numpy as np

from benchmarks import common
from benchmarks.accuracy import run_method
from napari_heatseg.core.ictm import default_parameters

FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)


def default_lam(item):
    n_channels = item.image.shape[item.channel_axis] if item.colour else 1
    return default_parameters("gaussian", n_channels, item.scope)["lam"]


def scores_by_factor(items):
    """IoU matrix: one row per item, one column per factor of :data:`FACTORS`."""
    return np.array([[common.score(item, run_method("heat", item, {"lam": f * default_lam(item)}))
                      for f in FACTORS] for item in items])


def leave_one_out(scores):
    """Mean IoU when each item gets the factor that is best on the other items."""
    picked = []
    for i in range(len(scores)):
        others = np.delete(scores, i, axis=0).mean(axis=0)
        picked.append(scores[i, int(np.argmax(others))])
    return float(np.mean(picked))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(common.available_sets()))
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    print("| set (items) | default lam | IoU at default | leave-one-out IoU | best factor in hindsight | "
          "its IoU | IoU at x" + " / x".join(f"{f:g}" for f in FACTORS) + " |")
    print("|---|---|---|---|---|---|---|")
    for name in args.sets.split(","):
        items = common.load_set(name, limit=args.limit)
        scores = scores_by_factor(items)
        means = scores.mean(axis=0)
        best = int(np.argmax(means))
        loo = f"{leave_one_out(scores):.3f}" if len(items) > 2 else "-"
        lam = sorted({default_lam(item) for item in items})
        print(f"| {name} ({len(items)}) | {', '.join(f'{v:g}' for v in lam)} | {means[FACTORS.index(1.0)]:.3f} | "
              f"{loo} | x{FACTORS[best]:g} | {means[best]:.3f} | "
              + " / ".join(f"{m:.3f}" for m in means) + " |", flush=True)


if __name__ == "__main__":
    main()
