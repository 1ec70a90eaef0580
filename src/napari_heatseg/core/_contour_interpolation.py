"""ITK's morphological contour interpolation, run in a worker process of its own.

ITK's filter can leave the heap corrupted: glibc aborted ("malloc_consolidate(): unaligned
fastbin chunk detected") in about one run in three of ``tests/core/test_fill_between.py``
with the filter in the test process, and now and then in a process running the filter
alone (never in one running the solver without ITK). So the filter runs in one worker process, started on first use and
kept for the session (ITK's modules take seconds to load), restarted once if it dies. The
worker runs this file as a script (not through ``multiprocessing``, which would re-import the
caller's main script) and imports only numpy and ITK; requests and answers are pickles on its
standard input and on a copy of its standard output (what ITK prints goes to standard error).
"""

import atexit
import importlib.util
import os
import pickle
import subprocess
import sys
import threading

import numpy as np

__all__ = ["INSTALL_HINT", "interpolate"]

INSTALL_HINT = 'pip install "napari-heatseg[medical]"'

_lock = threading.Lock()
_worker = None


def interpolate(compact, spacing, slices_of_label):
    """The filter's output for ``compact`` (labels 1..K, uint8 or uint16, axis 0 the stack).

    Parameters
    ----------
    compact : (P, M, N) ndarray of uint8 or uint16
    spacing : tuple of 3 float
        Voxel size along the array's axes.
    slices_of_label : dict of int to list of int
        For each label, the annotated slices (indices along axis 0) that hold it.
    """
    if importlib.util.find_spec("itk") is None:
        raise ImportError(f"fill between slices needs ITK's morphological contour interpolation; install it "
                          f"with {INSTALL_HINT}.")
    request = (np.ascontiguousarray(compact), tuple(float(s) for s in spacing), dict(slices_of_label))
    with _lock:
        for attempt in range(2):
            try:
                answer = _ask(request)
                break
            except (EOFError, BrokenPipeError, pickle.UnpicklingError):
                _stop()
                if attempt:
                    raise RuntimeError("ITK's contour interpolation crashed twice in its worker process; try "
                                       "again, or report the annotation that causes it.") from None
    kind, value = answer
    if kind == "missing":
        raise ImportError(f"ITK is installed without its morphological contour interpolation module; install it "
                          f"with {INSTALL_HINT}.")
    if kind == "error":
        raise RuntimeError(f"ITK's contour interpolation failed: {value}")
    return value


def _ask(request):
    global _worker
    if _worker is None or _worker.poll() is not None:
        _worker = subprocess.Popen([sys.executable, os.path.abspath(__file__)], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE)
    pickle.dump(request, _worker.stdin, protocol=pickle.HIGHEST_PROTOCOL)
    _worker.stdin.flush()
    return pickle.load(_worker.stdout)


@atexit.register
def _stop():
    global _worker
    if _worker is not None:
        _worker.stdin.close()  # the worker ends at the end of its input
        try:
            _worker.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _worker.kill()
        _worker.stdout.close()
        _worker = None


def _run_filter(itk, compact, spacing, slices_of_label):
    image = itk.image_from_array(compact)  # a copy: ITK does not hold on to numpy's buffer
    image.SetSpacing([float(s) for s in spacing[::-1]])  # ITK orders axes x, y, z
    fill = itk.MorphologicalContourInterpolator[type(image)].New(Input=image)
    fill.SetAxis(2)  # numpy axis 0
    fill.SetUseCustomSlicePositions(True)  # the annotated slices, even where two of them touch
    for label, slices in slices_of_label.items():
        fill.SetLabeledSliceIndices(2, int(label), [int(k) for k in slices])
    fill.Update()
    return np.array(itk.array_from_image(fill.GetOutput()), dtype=compact.dtype)


def _serve():
    """The worker's loop: one answer per request, until the end of standard input."""
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to standard error, not into the answers
    requests = sys.stdin.buffer
    itk = None
    while True:
        try:
            compact, spacing, slices_of_label = pickle.load(requests)
        except EOFError:
            return
        try:
            if itk is None:
                import itk

                itk.MorphologicalContourInterpolator  # noqa: B018 (loads the module, or fails)
        except (ImportError, AttributeError):
            itk, answer = None, ("missing", None)
        else:
            try:
                answer = ("labels", _run_filter(itk, compact, spacing, slices_of_label))
            except Exception as error:  # noqa: BLE001 (every failure goes back to the caller)
                answer = ("error", f"{type(error).__name__}: {error}")
        pickle.dump(answer, answers, protocol=pickle.HIGHEST_PROTOCOL)
        answers.flush()


if __name__ == "__main__":
    _serve()
    # leave without freeing: ITK's filter can leave the heap corrupted, and glibc would abort
    # (and print) while freeing it at exit; every answer has been written and flushed
    os._exit(0)
