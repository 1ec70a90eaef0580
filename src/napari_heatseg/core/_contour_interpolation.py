"""ITK's morphological contour interpolation, run in a worker process of its own.

In the same process as the heat solver, ITK's filter left the heap corrupted in about one
run in six of ``tests/core/test_fill_between.py`` (glibc aborted at exit: "malloc_consolidate():
unaligned fastbin chunk detected"); alone, or with the solver but without ITK, it never
did. So the filter runs in one spawned worker, kept for the session (ITK's modules take
seconds to load), and restarted once if it dies. This module imports only numpy, so the
worker loads nothing of the solver.
"""

import importlib.util
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

__all__ = ["INSTALL_HINT", "interpolate"]

INSTALL_HINT = 'pip install "napari-heatseg[medical]"'

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
    global _worker
    if importlib.util.find_spec("itk") is None:
        raise ImportError(f"fill between slices needs ITK's morphological contour interpolation; install it "
                          f"with {INSTALL_HINT}.")
    for attempt in range(2):
        if _worker is None:
            _worker = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        try:
            return _worker.submit(_run_filter, compact, spacing, slices_of_label).result()
        except BrokenProcessPool:
            _worker.shutdown(wait=False)
            _worker = None
            if attempt:
                raise RuntimeError("ITK's contour interpolation crashed twice in its worker process; "
                                   "try again, or report the annotation that causes it.") from None


def _run_filter(compact, spacing, slices_of_label):
    try:
        import itk

        filter_class = itk.MorphologicalContourInterpolator
    except (ImportError, AttributeError):
        raise ImportError(f"ITK is installed without its morphological contour interpolation module; "
                          f"install it with {INSTALL_HINT}.") from None
    image = itk.image_from_array(compact)  # a copy: ITK does not hold on to numpy's buffer
    image.SetSpacing([float(s) for s in spacing[::-1]])  # ITK orders axes x, y, z
    fill = filter_class[type(image)].New(Input=image)
    fill.SetAxis(2)  # numpy axis 0
    fill.SetUseCustomSlicePositions(True)  # the annotated slices, even where two of them touch
    for label, slices in slices_of_label.items():
        fill.SetLabeledSliceIndices(2, int(label), [int(k) for k in slices])
    fill.Update()
    return np.array(itk.array_from_image(fill.GetOutput()), dtype=compact.dtype)
