"""Batch segmentation of a folder of images, serially or on a dask.distributed cluster.

One *job* per input file: read it, find or make its start, segment it (whole, or slice by
slice with :mod:`.stack`), write the labels atomically under the same name in the output
folder, then a JSON sidecar with the parameters next to it. A job never raises: it returns
a record with ``status`` ``"done"`` or ``"failed"`` and a one-line ``reason``, so one bad
file does not stop the batch. Outputs that already exist are skipped (writes are atomic, so
an existing output is complete), which makes an interrupted batch resumable.
"""

import json
import time
from pathlib import Path

import numpy as np

from . import api
from .io import HeatsegIOError, SUFFIXES, atomic_write, label_suffix, read_image, stem, suffix, write_labels

__all__ = ["clean_stale_parts", "find_inputs", "make_jobs", "run_job", "run_jobs", "sidecar_path"]


def find_inputs(folder):
    """Supported image files in ``folder`` (not hidden), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise HeatsegIOError(f"{folder}: input folder not found; pass a folder of images.")
    files = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith(".") and any(
            path.name.lower().endswith(s) for s in SUFFIXES
        ):
            files.append(path)
    if not files:
        raise HeatsegIOError(f"{folder}: no image files ({', '.join(SUFFIXES)}) in this folder.")
    return files


def sidecar_path(output):
    """The JSON sidecar written next to an output: ``name.tif`` -> ``name.heatseg.json``."""
    output = Path(output)
    return output.with_name(stem(output) + ".heatseg.json")


def _start_index(start_dir):
    """Start files of a folder by stem; a file with the image's own suffix wins ties."""
    index = {}
    for path in sorted(Path(start_dir).iterdir()):
        if path.is_file() and not path.name.startswith(".") and _has_stem(path):
            index.setdefault(stem(path), []).append(path)
    return index


def _start_for(image_path, index):
    matches = index.get(stem(image_path), [])
    same_type = [p for p in matches if suffix(p) == suffix(image_path)]
    return str((same_type or matches)[0]) if matches else None


def _has_stem(path):
    try:
        return bool(stem(path))
    except HeatsegIOError:
        return False


def make_jobs(inputs, out_dir, *, settings, start=None, start_dir=None, start_method=None,
              overwrite=False):
    """Plan the batch: one job dict per input, and the inputs skipped because done.

    Returns
    -------
    jobs : list of dict
        Picklable job descriptions for :func:`run_job`.
    skipped : list of dict
        ``{"name", "status": "skipped", "reason"}`` for outputs that already exist.
    """
    out_dir = Path(out_dir)
    starts = _start_index(start_dir) if start_dir is not None else None
    jobs, skipped = [], []
    for path in inputs:
        kind = label_suffix(path)  # a jpg's labels go to png
        output = out_dir / (path.name if kind == suffix(path) else stem(path) + kind)
        if output.exists() and not overwrite:
            reason = "output exists"
            previous = _read_sidecar(output)
            if previous is not None and previous.get("settings") != settings:
                reason += " (made with other parameters; pass --overwrite to redo it)"
            skipped.append(dict(name=path.name, status="skipped", reason=reason))
            continue
        job = dict(name=path.name, image=str(path), output=str(output), settings=settings,
                   start=str(start) if start else None, start_method=start_method,
                   overwrite=overwrite)
        if start_dir is not None:
            job["start"] = _start_for(path, starts)
            job["missing_start"] = job["start"] is None and f"no start file named {stem(path)}.* in {start_dir}"
        jobs.append(job)
    return jobs, skipped


def _read_sidecar(output):
    try:
        return json.loads(sidecar_path(output).read_text())
    except (OSError, ValueError):
        return None


def clean_stale_parts(out_dir, names):
    """Remove temporary files left by a killed run (``.name.XXXX.part.ext``); returns them."""
    removed = []
    for path in Path(out_dir).iterdir():
        if any(path.name.startswith(f".{n}.") and ".part" in path.name for n in names):
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def _segment_file(job):
    settings = job["settings"]
    image, file_spacing = read_image(job["image"])
    channel_axis = settings.get("channel_axis")
    spatial_ndim = image.ndim - (channel_axis is not None)
    spacing = settings.get("spacing")
    if spacing is None and file_spacing is not None and len(file_spacing) == spatial_ndim:
        spacing = file_spacing
    if job.get("missing_start"):
        raise HeatsegIOError(job["missing_start"])
    if job["start"] is not None:
        start, _ = read_image(job["start"])
    else:
        shape = np.delete(image.shape, channel_axis) if channel_axis is not None else image.shape
        start = api.segment(image, np.ones(tuple(shape), np.uint8), method=job["start_method"],
                            channel_axis=channel_axis, spacing=spacing, scope="inside")
        if not start.any():
            raise ValueError(f"--start-method {job['start_method']} found no object in this image.")
    options = dict(method=settings["method"], scope=settings["scope"], channel_axis=channel_axis,
                   spacing=spacing, **settings.get("params", {}))
    mode = settings.get("stack")
    if mode is None:
        labels = api.segment(image, start, **options)
    else:
        from .stack import segment_stack

        labels = segment_stack(image, start, mode=mode, axis=settings.get("axis", 0), **options)
    return labels, spacing


def run_job(job):
    """Run one job; never raises (except KeyboardInterrupt). Returns a result record."""
    t0 = time.perf_counter()
    try:
        labels, spacing = _segment_file(job)
        like = job["image"] if suffix(job["output"]) in (".nii", ".nii.gz") and \
            suffix(job["image"]) in (".nii", ".nii.gz") else None
        write_labels(job["output"], labels, spacing=spacing, overwrite=job["overwrite"], like=like)
        seconds = time.perf_counter() - t0
        record = dict(input=job["image"], output=job["output"], start=job["start"],
                      start_method=job["start_method"], settings=job["settings"],
                      spacing=list(spacing) if spacing is not None else None,
                      labelled_voxels=int(np.count_nonzero(labels)), seconds=round(seconds, 3),
                      written=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        text = json.dumps(record, indent=2)
        atomic_write(sidecar_path(job["output"]), lambda tmp: Path(tmp).write_text(text), overwrite=True)
        return dict(name=job["name"], status="done", seconds=seconds, reason="")
    except Exception as exc:  # one bad file must not stop the batch: report it instead
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if not isinstance(exc, (OSError, ValueError, TypeError, MemoryError)):
            reason = f"{type(exc).__name__}: {reason}"
        return dict(name=job["name"], status="failed", seconds=time.perf_counter() - t0, reason=reason)


def run_jobs(jobs, *, workers=1, scheduler=None, on_result=None):
    """Run jobs serially (``workers=1``), on a local dask cluster, or on ``scheduler``.

    Parameters
    ----------
    jobs : list of dict
        From :func:`make_jobs`.
    workers : int
        Worker processes of a ``dask.distributed.LocalCluster`` (1: run in this process).
    scheduler : str, optional
        Address of an existing dask scheduler (``tcp://host:8786``); overrides ``workers``.
    on_result : callable, optional
        Called with each result record as soon as it is available (progress bars).

    Returns
    -------
    list of dict
        One result record per job.
    """
    results = []

    def collect(record):
        results.append(record)
        if on_result is not None:
            on_result(record)

    if scheduler is None and (workers <= 1 or len(jobs) <= 1):
        for job in jobs:
            collect(run_job(job))
        return results

    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=min(workers, len(jobs)), threads_per_worker=1,
                               processes=True, dashboard_address=None, silence_logs=40)
        client = Client(cluster)
    else:
        client = Client(scheduler, timeout="10s")
    try:
        futures = client.map(run_job, jobs, pure=False)
        for future in as_completed(futures):
            collect(future.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return results
