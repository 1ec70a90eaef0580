"""Box start on photos: the heat defaults against a grid of settings, chosen leave-one-set-out.

Every setting runs ``hs.segment(photo, filled_box, scope="inside", channel_axis=-1,
**setting)`` on both photo sets (``natural2d_grabcut`` and ``natural2d_coco_mval``), with
OpenCV GrabCut on the same boxes in the same process for comparison. Then, for each set,
the setting that is best on the *other* set is scored on it (leave-one-set-out): that is
what a default chosen on one kind of photo gives on photos it was not chosen on.

Run from the project root::

    python -m benchmarks.box_defaults            # writes results/box_defaults.md
    python -m benchmarks.box_defaults --limit 4  # a quick look
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import napari_heatseg as hs
from benchmarks import common, noc

SETS = ("natural2d_grabcut", "natural2d_coco_mval")
SETTINGS = (
    {"edge": 0.0, "lam": 0.05},  # the defaults before the edge-aware operator
    {"edge": 0.5},
    {"edge": 1.0, "lam": 0.05},
    {"edge": 1.0, "lam": 0.025},
    {"edge": 1.0, "lam": 0.015},
    {"edge": 1.0, "lam": 0.01},
    {"edge": 1.0, "lam": 0.005},
    {},  # today's defaults
)
RESULTS = Path(__file__).resolve().parent / "results" / "box_defaults.md"


def run_heat(item, setting):
    labels = hs.segment(item.image, item.start.astype(np.uint8), scope="inside",
                        channel_axis=item.channel_axis, **setting)
    return labels


def measure(items_by_set, settings):
    """``{(label, set): (mean IoU, median seconds)}`` for every setting and GrabCut."""
    table = {}
    for set_name, items in items_by_set.items():
        for item in items:  # warm the compiled loops outside the timings
            run_heat(item, {"max_num_iter": 1})
            break
        for setting in settings:
            scores, seconds = [], []
            for item in items:
                labels, took = common.timed(run_heat, item, setting)
                scores.append(common.score(item, labels))
                seconds.append(took)
            table[json.dumps(setting), set_name] = (float(np.mean(scores)), statistics.median(seconds))
            print(f"{set_name} {json.dumps(setting)}: {table[json.dumps(setting), set_name][0]:.3f}", flush=True)
        means, seconds = [], []
        for seed in common.GRABCUT_SEEDS:
            scores = []
            for item in items:
                labels, took = common.timed(common.run_grabcut, item.image, item.start, seed=seed)
                scores.append(common.score(item, labels))
                seconds.append(took)
            means.append(float(np.mean(scores)))
        table["grabcut", set_name] = (float(np.mean(means)), statistics.median(seconds))
        table["grabcut range", set_name] = (min(means), max(means))
    return table


def leave_one_set_out(table, settings, sets):
    """For each set: the setting best on the other sets and its score here."""
    rows = []
    for held_out in sets:
        others = [s for s in sets if s != held_out]
        chosen = max(settings, key=lambda st: np.mean([table[json.dumps(st), s][0] for s in others]))
        rows.append((held_out, json.dumps(chosen), table[json.dumps(chosen), held_out][0]))
    return rows


def report(table, settings, sets, loso):
    lines = [f"# Box start on photos: settings and leave-one-set-out ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
             "", "`python -m benchmarks.box_defaults`: mean IoU (median seconds per photo), GrabCut's 255 band "
             "left out, OpenCV GrabCut (5 iterations) on the same boxes in the same run: the mean over "
             f"its random seeds {list(common.GRABCUT_SEEDS)}, and the range of the set means over them.", "",
             "| setting | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
    for label in [json.dumps(s) for s in settings] + ["grabcut"]:
        name = "OpenCV GrabCut" if label == "grabcut" else ("today's defaults" if label == "{}" else f"`{label}`")
        cells = [f"{table[label, s][0]:.3f} ({table[label, s][1]:.2f} s)" for s in sets]
        if label == "grabcut":
            cells = [f"{cell}, seeds {table['grabcut range', s][0]:.3f}-{table['grabcut range', s][1]:.3f}"
                     for cell, s in zip(cells, sets)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Leave-one-set-out (the setting best on the other set, scored on this one):", "",
              "| held-out set | setting chosen on the other | IoU here |", "|---|---|---|"]
    lines += [f"| {held} | `{chosen}` | {score:.3f} |" for held, chosen, score in loso]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="use only the first N photos of each set")
    args = parser.parse_args(argv)
    sets = [s for s in SETS if (common.DATA / s / "images").is_dir()]
    if not sets:
        print(f"no photo sets under {common.DATA}; nothing to measure.")
        return 0
    items_by_set = {s: noc.load_items(s, limit=args.limit) for s in sets}
    table = measure(items_by_set, SETTINGS)
    text = report(table, SETTINGS, sets, leave_one_set_out(table, SETTINGS, sets) if len(sets) > 1 else [])
    print(text)
    if args.limit is None:
        RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
