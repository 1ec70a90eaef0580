"""Start-up cost: ``import napari_heatseg``, ``heatseg --help`` and the first use of the solver.

Each command runs in a fresh interpreter, ``--repeat`` times (default 5); the best wall time
is printed (a warm disk cache, the least disturbed run), next to a bare interpreter's start
for reference. ``-X importtime`` gives the package's own import time, without the
interpreter's start-up. Targets (issues 12 and 18): the import under 0.3 s, ``heatseg
--help`` under 0.5 s.

Run from the project root:

    python benchmarks/bench_import.py [--repeat 5]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("numba", "llvmlite", "cv2", "skimage", "dask", "scipy")
COMMANDS = {
    "python -c pass (interpreter only)": [sys.executable, "-c", "pass"],
    "python -c 'import napari_heatseg'": [sys.executable, "-c", "import napari_heatseg"],
    "python -m napari_heatseg.cli --help": [sys.executable, "-m", "napari_heatseg.cli", "--help"],
    "import + hs.warm_up() (numba loops from the disk cache)": [
        sys.executable, "-c", "import napari_heatseg as hs; hs.warm_up()"],
}


def _environment():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return env


def best_wall_time(argv, repeat):
    """Smallest wall time in seconds of ``repeat`` runs of ``argv`` (output discarded)."""
    best = float("inf")
    for _ in range(repeat):
        begin = time.perf_counter()
        subprocess.run(argv, env=_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        best = min(best, time.perf_counter() - begin)
    return best


def import_time(module, repeat):
    """Best cumulative ``-X importtime`` of ``module`` in seconds, and the heavy packages it loaded."""
    best = float("inf")
    code = f"import sys, {module}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    for _ in range(repeat):
        result = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=_environment(),
                                capture_output=True, text=True, check=True)
        lines = [line for line in result.stderr.splitlines() if re.search(rf"\|\s*{re.escape(module)}$", line)]
        best = min(best, int(lines[-1].split("|")[1]) / 1e6)
    return best, result.stdout.strip() or "none"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per command; the best is kept")
    args = parser.parse_args(argv)
    commands = dict(COMMANDS)
    entry_point = shutil.which("heatseg")
    if entry_point:
        commands["heatseg --help (installed entry point)"] = [entry_point, "--help"]
    seconds, heavy = import_time("napari_heatseg", args.repeat)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}; best of {args.repeat}\n")
    print("| what | seconds |\n|---|---|")
    print(f"| `import napari_heatseg`, -X importtime (package only) | {seconds:.4f} |")
    for name, command in commands.items():
        print(f"| {name}, wall | {best_wall_time(command, args.repeat):.3f} |")
    print(f"\nheavy packages loaded by `import napari_heatseg`: {heavy}")


if __name__ == "__main__":
    main()
