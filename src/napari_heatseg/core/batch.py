"""Files and folders: one image file segmented (:func:`segment_file`), and batches of them.

One *job* per input file: read it, find or make its start, segment it (whole, or slice by
slice with :mod:`.stack`) and write the labels under the same name in the output folder,
with a JSON sidecar of the parameters next to it. The labels and the sidecar are one unit:
once the labels are computed, the sidecar is written first, saying the job is under way,
then the labels (atomically), then the sidecar again, saying it is complete. An output counts as done only when both
are there and the sidecar says so; any other state is redone on the next run (or, for a
file without any sidecar, which heatseg did not write, refused without ``overwrite``).

A job never raises: it returns a record with ``status`` ``"done"`` or ``"failed"`` and a
one-line ``reason``, so one bad file does not stop the batch; neither does a dask worker
that dies on one image. Before any work, :func:`make_jobs` refuses a batch in which two
inputs would write the same output or sidecar, or an output would replace an input.
"""

import contextlib
import json
import math
import signal
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from . import api
from ._memory import estimate_memory, refuse_if_too_big
from .io import (SUFFIXES, HeatsegIOError, colour_axis, grey_start, label_suffix, read_image, stem, stored_shape,
                 suffix)
from .medical_io import holds_dicom
from .outputs import atomic_write, check_separate, write_labels

__all__ = ["CONNECT_TIMEOUT", "dask_client", "find_inputs", "make_jobs", "output_path", "run_job", "run_jobs",
           "segment_file", "sidecar_path", "target_names"]


CONNECT_TIMEOUT = "10s"  # how long dask_client tries to reach a scheduler


def find_inputs(folder):
    """Images in ``folder`` (not hidden), sorted by name: files, and sub-folders of ``.dcm`` files
    (one DICOM series each, whose labels go to ``name.nrrd``).

    A sub-folder named like an image (``x.tif/``) is listed too, so that it fails as a job
    with its reason instead of being passed over in silence.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise HeatsegIOError(f"{folder}: input folder not found; pass a folder of images.")
    files = [path for path in sorted(folder.iterdir()) if not path.name.startswith(".")
             and (any(path.name.lower().endswith(s) for s in SUFFIXES) or holds_dicom(path))]
    if not files:
        raise HeatsegIOError(f"{folder}: no image files ({', '.join(SUFFIXES)}) or folders of .dcm files in "
                             f"this folder.")
    return files


def output_path(image_path, out_dir):
    """Where the labels of ``image_path`` go: same name in ``out_dir`` (a jpg's or bmp's as png, an
    ``.nhdr``'s as ``.nrrd``, an ``.mhd``'s as ``.mha``, a DICOM series' as ``.nrrd``)."""
    kind = label_suffix(image_path)
    name = Path(image_path).name if kind == suffix(image_path) else stem(image_path) + kind
    return Path(out_dir) / name


def sidecar_path(output):
    """The JSON sidecar written next to an output: ``name.tif`` -> ``name.heatseg.json``."""
    output = Path(output)
    return output.with_name(stem(output) + ".heatseg.json")


def target_names(inputs, out_dir):
    """Names of every file a batch of ``inputs`` may write into ``out_dir`` (labels and sidecars)."""
    outputs = [output_path(path, out_dir) for path in inputs]
    return [p.name for p in outputs] + [sidecar_path(p).name for p in outputs]


# ------------------------------------------------------------------------------ one file

def segment_file(image, *, start=None, start_method=None, method=api.DEFAULT_METHOD, scope=None,
                 spacing=None, channel_axis=None, params=None, stack=None, axis=0, executor=None,
                 progress=None):
    """Segment one image file; the work of ``heatseg segment`` and of every batch job.

    Parameters
    ----------
    image : str or Path
        The image file (any type :func:`~napari_heatseg.core.io.read_image` reads).
    start : str or Path, optional
        The start file. Without it, ``start_method`` makes the start.
    start_method : str, optional
        A baseline (:func:`napari_heatseg.methods`) run over the whole image, ``scope="inside"``,
        whose answer is the start.
    method, scope, channel_axis
        As for :func:`napari_heatseg.segment`.
    spacing : sequence of float, optional
        Voxel size; default: the file's own, when it has one per spatial axis.
    params : dict, optional
        Method parameters.
    stack : {None, 'propagate', 'independent', 'full3d'}
        Segment slice by slice along ``axis`` (:func:`~napari_heatseg.core.stack.segment_stack`).
    executor : dask.distributed.Client or concurrent.futures.Executor, optional
        Parallel slices for ``stack="independent"``.
    progress : callable, optional
        Called as ``progress(done, total, energy)`` after every iteration (``total`` None) or
        every slice (``energy`` None).

    Returns
    -------
    labels : ndarray
        The segmentation, with the start's label values and dtype.
    spacing : tuple of float or None
        The spacing used.
    """
    _refuse_before_reading(image, channel_axis, method, params or {})
    pixels, file_spacing = read_image(image)
    marks = None if start is None else read_image(start)[0]
    if channel_axis is None:  # told from each file: a folder may mix grey and colour images
        channel_axis = colour_axis(image, pixels, marks)
    spatial_ndim = pixels.ndim - (channel_axis is not None)
    if spacing is None and file_spacing is not None and len(file_spacing) == spatial_ndim:
        spacing = file_spacing
    if marks is not None:
        marks = grey_start(marks, np.delete(pixels.shape, channel_axis) if channel_axis is not None else pixels.shape)
    elif start_method is not None:
        shape = np.delete(pixels.shape, channel_axis) if channel_axis is not None else pixels.shape
        marks = api.segment(pixels, np.ones(tuple(shape), np.uint8), method=start_method,
                            channel_axis=channel_axis, spacing=spacing, scope="inside")
        if not marks.any():
            raise ValueError(f"--start-method {start_method} found no object in this image.")
    else:
        raise ValueError("give a start file or a start method.")
    options = dict(method=method, scope=scope, channel_axis=channel_axis, spacing=spacing, **(params or {}))
    if stack is not None:
        from .stack import segment_stack

        report = None if progress is None else (lambda done, total: progress(done, total, None))
        return segment_stack(pixels, marks, mode=stack, axis=axis, executor=executor, progress=report,
                             **options), spacing
    labels = None
    for step in api.evolve(pixels, marks, **options):
        labels = step.labels
        if progress is not None:
            progress(step.iteration, None, step.energy)
    return labels, spacing


def _refuse_before_reading(path, channel_axis, method, params):
    """Refuse, from the file's header, an image whose run cannot fit in memory (with one label:
    the least any run needs), before the whole file is read."""
    stored = stored_shape(path)
    if stored is None:
        return
    shape, dtype = stored
    spatial = tuple(np.delete(shape, channel_axis)) if channel_axis is not None else shape
    channels = int(np.prod(shape)) // max(int(np.prod(spatial)), 1)
    file_bytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    heat = {k: v for k, v in params.items() if k in ("model", "components", "edge")} if method == api.DEFAULT_METHOD else {}
    refuse_if_too_big(file_bytes + estimate_memory(spatial, 1, channels, **heat), spatial,
                      f"{channels} channel(s) (read from the file's header, before reading it)")


# ---------------------------------------------------------------------------- planning

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


def _check_collisions(inputs, out_dir):
    """Refuse two inputs that would write one file (a.jpg and a.png -> a.png; b.tif, b.tiff -> b.heatseg.json)."""
    writers = defaultdict(list)
    for path in inputs:
        output = output_path(path, out_dir)
        writers[output.name].append(path.name)
        writers[sidecar_path(output).name].append(path.name)
    clashes = [f"{' and '.join(names)} would both write {target}" for target, names in writers.items()
               if len(names) > 1]
    if clashes:
        raise HeatsegIOError(f"{'; '.join(clashes)} in {out_dir}; rename or move one of each, so that every "
                             f"image has its own output.")


def _read_sidecar(output):
    try:
        record = json.loads(sidecar_path(output).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _state(output):
    """``"done"``, ``"unfinished"`` (an interrupted job: redo it), ``"foreign"`` or ``"free"``; and the sidecar."""
    record = _read_sidecar(output)
    if record is not None and Path(record.get("output", output.name)).name != output.name:
        return "foreign", record  # the sidecar of another output with the same stem
    labels = output.is_file() and not output.is_symlink()
    if record is None:
        return ("foreign" if output.exists() or output.is_symlink() else "free"), None
    if labels and record.get("complete", True):  # sidecars of earlier versions: written last, so complete
        return "done", record
    return "unfinished", record


def make_jobs(inputs, out_dir, *, settings, start=None, start_dir=None, start_method=None,
              overwrite=False):
    """Plan the batch: one job dict per input, and the inputs skipped because done.

    Raises
    ------
    HeatsegIOError
        Before any work, if two inputs would write the same file, or an output (a link to
        an input, say) would replace an input.

    Returns
    -------
    jobs : list of dict
        Picklable job descriptions for :func:`run_job`.
    skipped : list of dict
        ``{"name", "status": "skipped", "reason"}`` for outputs that are complete.
    """
    out_dir = Path(out_dir)
    inputs = [Path(p) for p in inputs]
    _check_collisions(inputs, out_dir)
    starts = _start_index(start_dir) if start_dir is not None else None
    jobs, skipped = [], []
    for path in inputs:
        output = output_path(path, out_dir)
        job_start = _start_for(path, starts) if starts is not None else (str(start) if start else None)
        check_separate([("output", output), ("sidecar", sidecar_path(output))],
                       [("image", path), ("start", job_start)])
        state, previous = _state(output)
        problem = None
        if state == "done" and not overwrite:
            reason = "output exists"
            if previous.get("settings") != settings:
                reason += " (made with other parameters; pass --overwrite to redo it)"
            skipped.append(dict(name=path.name, status="skipped", reason=reason))
            continue
        if state == "foreign" and not overwrite:
            problem = (f"{output.name} or {sidecar_path(output).name} exists but was not written for this image by "
                       f"heatseg batch; pass --overwrite to replace it, or choose another output folder.")
        jobs.append(dict(name=path.name, image=str(path), output=str(output), settings=settings,
                         start=job_start, start_method=start_method, problem=problem,
                         missing_start=starts is not None and job_start is None
                         and f"no start file named {stem(path)}.* in {start_dir}"))
    return jobs, skipped


# ------------------------------------------------------------------------------- running

def _write_sidecar(job, **fields):
    record = dict(input=job["image"], output=job["output"], start=job["start"], start_method=job["start_method"],
                  settings=job["settings"], **fields)
    text = json.dumps(record, indent=2)
    atomic_write(sidecar_path(job["output"]), lambda tmp: Path(tmp).write_text(text), overwrite=True)


def _failure(job, exc, seconds):
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if not isinstance(exc, (OSError, ValueError, TypeError, MemoryError)):
        reason = f"{type(exc).__name__}: {reason}"
    return dict(name=job["name"], status="failed", seconds=seconds, reason=reason)


def run_job(job):
    """Run one job; never raises (except KeyboardInterrupt). Returns a result record."""
    t0 = time.perf_counter()
    try:
        if job.get("problem"):
            raise HeatsegIOError(job["problem"])
        if job.get("missing_start"):
            read_image(job["image"])  # a corrupt image is the first thing to report
            raise HeatsegIOError(job["missing_start"])
        labels, spacing = segment_file(job["image"], start=job["start"], start_method=job["start_method"],
                                       **job["settings"])
        _write_unit(job, labels, spacing, t0)
        return dict(name=job["name"], status="done", seconds=time.perf_counter() - t0, reason="")
    except Exception as exc:  # one bad file must not stop the batch: report it instead
        return _failure(job, exc, time.perf_counter() - t0)


def _write_unit(job, labels, spacing, t0):
    """Sidecar (under way), labels, sidecar (complete); a failure puts the earlier sidecar back."""
    sidecar = sidecar_path(job["output"])
    try:
        previous = sidecar.read_text()
    except OSError:
        previous = None
    _write_sidecar(job, complete=False)
    try:
        write_labels(job["output"], labels, spacing=spacing, overwrite=True, like=job["image"])
    except Exception:
        with contextlib.suppress(OSError):
            if previous is None:
                sidecar.unlink()
            else:
                atomic_write(sidecar, lambda tmp: Path(tmp).write_text(previous), overwrite=True)
        raise
    _write_sidecar(job, complete=True, spacing=list(spacing) if spacing is not None else None,
                   labelled_voxels=int(np.count_nonzero(labels)), seconds=round(time.perf_counter() - t0, 3),
                   written=time.strftime("%Y-%m-%dT%H:%M:%S%z"))


@contextlib.contextmanager
def dask_client(*, workers=1, scheduler=None):
    """A ``dask.distributed.Client`` on ``scheduler``, or on a local cluster of ``workers`` processes.

    Yields None for ``workers <= 1`` without a scheduler (run in this process). The local
    workers ignore Ctrl+C: the process that owns them stops them, so an interrupted run
    prints one message, not one traceback per worker.
    """
    if scheduler is None and workers <= 1:
        yield None
        return
    from dask.distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, ValueError) as exc:
            raise HeatsegIOError(f"cannot reach the dask scheduler at {scheduler} ({exc}); check the address "
                                 f"and that the scheduler is running.") from None
        with client:
            yield client
        return
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the worker processes
    try:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=50)
    finally:
        signal.signal(signal.SIGINT, handler)
    with cluster, Client(cluster) as client:
        yield client


def run_jobs(jobs, *, workers=1, scheduler=None, on_result=None):
    """Run jobs serially (``workers=1``), on a local dask cluster, or on ``scheduler``.

    Parameters
    ----------
    jobs : list of dict
        From :func:`make_jobs`.
    workers : int
        Worker processes of a local cluster (:func:`dask_client`; 1: run in this process).
    scheduler : str, optional
        Address of an existing dask scheduler (``tcp://host:8786``); overrides ``workers``.
    on_result : callable, optional
        Called with each result record as soon as it is available (progress bars).

    Returns
    -------
    list of dict
        One result record per job. A job whose worker died (``KilledWorker``) is one
        failed record; the others go on.
    """
    results = []

    def collect(record):
        results.append(record)
        if on_result is not None:
            on_result(record)

    with dask_client(workers=min(workers, len(jobs)), scheduler=scheduler) as client:
        if client is None:
            for job in jobs:
                collect(run_job(job))
            return results
        from dask.distributed import as_completed

        futures = {client.submit(run_job, job, pure=False): job for job in jobs}
        for future in as_completed(futures):
            try:
                record = future.result()
            except Exception as exc:  # the worker died on it, or the cluster went away
                record = _failure(futures[future], exc, math.nan)
                record["reason"] = f"the worker segmenting it stopped ({record['reason']})"
            collect(record)
    return results
