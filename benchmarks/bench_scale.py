"""Scale benchmarks: folder batch throughput, chunked (zarr) memory vs volume size, a 512x512x300 volume.

Run from the project root::

    python benchmarks/bench_scale.py            # everything (several minutes on 2 cores)
    python benchmarks/bench_scale.py --quick    # smaller sizes, a few iterations

1. ``heatseg batch`` throughput (images/s) over a folder of 2D nuclei images (the bundled
   ``nuclei2d`` sample, shifted copies), with 1 worker (in process) and 2 workers (dask
   LocalCluster, start-up included and reported).
2. Peak memory of :func:`napari_heatseg.core.ictm.chunked.segment_chunked` on zarr volumes of
   growing size with a fixed chunk shape, each in a fresh process (peak RSS above the
   process's baseline after imports), against the peak of a volume that is one chunk.
3. Time for a 512 x 512 x 300 volume: the bundled brain MRI tiled (2 x 2 in-plane,
   repeated along z) - a synthetic volume built from a real one.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# ------------------------------------------------------------------------------ 1. batch

def bench_batch(n_images, max_num_iter):
    import tifffile

    from napari_heatseg.core.batch import find_inputs, make_jobs, run_jobs
    from napari_heatseg.samples import load_sample

    sample = load_sample("nuclei2d")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        for i in range(n_images):
            tifffile.imwrite(tmp / "in" / f"img{i:03d}.tif", np.roll(sample["image"], 7 * i, axis=1))
        tifffile.imwrite(tmp / "start.tif", sample["start"])
        settings = dict(method="heat", scope="all", spacing=None, channel_axis=None,
                        params={"max_num_iter": max_num_iter}, stack=None, axis=0)
        for workers in (1, 2):
            out = tmp / f"out{workers}"
            out.mkdir()
            jobs, _ = make_jobs(find_inputs(tmp / "in"), out, settings=settings, start=tmp / "start.tif")
            first = []
            t0 = time.perf_counter()
            results = run_jobs(jobs, workers=workers,
                               on_result=lambda r: first.append(time.perf_counter()) if not first else None)
            total = time.perf_counter() - t0
            done = sum(r["status"] == "done" for r in results)
            steady = (done - 1) / (time.perf_counter() - first[0]) if done > 1 else float("nan")
            rows.append((workers, done, total, done / total, steady))
    print(f"\n## 1. Folder batch: {n_images} images 256x256 (nuclei2d), max_num_iter={max_num_iter}")
    print("| workers | done | wall time (s) | images/s (incl. start-up) | images/s after first result |")
    print("|---|---|---|---|---|")
    for w, d, t, r, s in rows:
        print(f"| {w} | {d} | {t:.1f} | {r:.2f} | {s:.2f} |")
    return rows


# ----------------------------------------------------------------------- volumes from brain

def _tiled_brain(shape):
    """A (Z, Y, X) int16 volume tiled from the bundled brain MRI, and a start (balls in the tumour)."""
    from napari_heatseg.samples import load_sample

    sample = load_sample("mri3d")
    brain, start = sample["image"], sample["start"]
    reps = [int(np.ceil(n / m)) for n, m in zip(shape, brain.shape)]
    crop = tuple(slice(0, n) for n in shape)
    return np.tile(brain, reps)[crop], np.tile(start, reps)[crop], sample["spacing"]


def _write_zarr(path, array, chunks):
    import zarr

    store = zarr.create_array(store=str(path), shape=array.shape, chunks=chunks, dtype=array.dtype)
    for z in range(0, array.shape[0], chunks[0]):  # chunk rows at a time
        store[z:z + chunks[0]] = array[z:z + chunks[0]]
    return store


def child_make(folder, shape, chunks):
    """In a fresh process: write the tiled volume and its start as zarr stores."""
    image, start, spacing = _tiled_brain(shape)
    _write_zarr(Path(folder) / "image.zarr", image, chunks)
    _write_zarr(Path(folder) / "start.zarr", start, chunks)
    print(json.dumps(dict(spacing=spacing)))


def child_run(folder, max_num_iter, threads, spacing):
    """In another fresh process: peak RSS (MiB) above the after-import baseline of one chunked run."""
    import dask
    import zarr  # noqa: F401  (imported before the baseline is taken)

    from napari_heatseg.core.ictm.chunked import segment_chunked

    folder = Path(folder)
    baseline = _rss_mib()
    t0 = time.perf_counter()
    states = []
    with dask.config.set(scheduler="threads", num_workers=threads):
        segment_chunked(str(folder / "image.zarr"), str(folder / "start.zarr"), out=folder / "labels.zarr",
                        spacing=spacing, model="mean", max_num_iter=max_num_iter,
                        iter_callback=lambda i, e, c: states.append((i, c)))
    seconds = time.perf_counter() - t0
    print(json.dumps(dict(baseline=baseline, peak=_rss_mib() - baseline, seconds=seconds,
                          iterations=len(states) - 1, last_changed=states[-1][1] if states else None)))


def _child(*args):
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(args)], capture_output=True,
                         text=True, cwd=ROOT)
    if out.returncode:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _run_child(shape, chunks, max_num_iter, threads):
    with tempfile.TemporaryDirectory() as tmp:
        spacing = _child("make", tmp, shape, chunks)["spacing"]
        return _child("run", tmp, max_num_iter, threads, spacing)


def bench_memory(sizes, chunks, max_num_iter, threads=2):
    one = _run_child(list(chunks), list(chunks), max_num_iter, threads)
    chunk_mib = np.prod(chunks) * 2 / 2**20
    print(f"\n## 2. Chunked path: peak memory vs volume size (chunks {tuple(chunks)}, {threads} threads, "
          f"model mean, {max_num_iter} iteration(s) max)")
    print(f"One chunk as the whole volume: peak {one['peak']:.0f} MiB above baseline "
          f"(= the working set of one chunk; the int16 chunk itself is {chunk_mib:.1f} MiB)")
    print("| volume | MiB on disk (int16) | peak above baseline (MiB) | peak / one-chunk peak | time (s) | iterations |")
    print("|---|---|---|---|---|---|")
    rows = []
    for shape in sizes:
        r = _run_child(list(shape), list(chunks), max_num_iter, threads)
        size = np.prod(shape) * 2 / 2**20
        rows.append((shape, size, r["peak"], r["peak"] / one["peak"], r["seconds"], r["iterations"]))
        print(f"| {'x'.join(map(str, shape))} | {size:.0f} | {r['peak']:.0f} | {r['peak'] / one['peak']:.2f} | "
              f"{r['seconds']:.1f} | {r['iterations']} |")
    return one, rows


def bench_big(shape, chunks, max_num_iter, threads=2):
    r = _run_child(list(shape), list(chunks), max_num_iter, threads)
    print(f"\n## 3. {'x'.join(map(str, shape[::-1]))} (x, y, z) volume: brain MRI tiled, chunks {tuple(chunks)}")
    print(f"{r['iterations']} iterations (max {max_num_iter}), {r['seconds']:.0f} s in all "
          f"({r['seconds'] / max(r['iterations'] + 1, 1):.1f} s per update pass, percentile passes included), "
          f"peak {r['peak']:.0f} MiB above baseline; voxels changed in the last iteration: {r['last_changed']}")
    return r


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few iterations")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--skip", nargs="*", default=[], choices=["batch", "memory", "big"])
    args = parser.parse_args()
    if args.child:
        kind, *rest = json.loads(args.child)
        (child_make if kind == "make" else child_run)(*rest)
        return
    print(f"# bench_scale ({time.strftime('%Y-%m-%d %H:%M')}, {'quick' if args.quick else 'full'})")
    if "batch" not in args.skip:
        bench_batch(8 if args.quick else 24, max_num_iter=50)
    # chunks large enough that one chunk's working set dwarfs the allocator's noise (~+-25 MiB)
    chunks = (25, 128, 128) if args.quick else (50, 256, 256)
    if "memory" not in args.skip:
        sizes = [(50, 256, 256), (100, 256, 256)] if args.quick else [(100, 512, 512), (200, 512, 512),
                                                                      (300, 512, 512)]
        bench_memory(sizes, chunks, max_num_iter=1)
    if "big" not in args.skip:
        bench_big((300, 512, 512), (50, 256, 256), max_num_iter=2 if args.quick else 5)


if __name__ == "__main__":
    main()
