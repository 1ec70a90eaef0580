"""The click simulator of the standard interactive-segmentation protocol.

Each click goes where the current prediction is most wrong (Xu et al. 2016; the
clicker of RITM, Sofiiuk et al. 2022). With the truth ``T``, the prediction ``P`` and
the voxels to leave out ``I`` (GrabCut's 255 band):

    FN = T & ~P & ~I,    FP = ~T & P & ~I,

``d_FN`` and ``d_FP`` are the exact Euclidean distances of each voxel to the border of
FN and of FP (``distance_transform_edt`` of the map padded by one voxel, so the image
border counts as a border; physical units with the voxel spacing), set to 0 on voxels
already clicked. If ``max d_FN > max d_FP`` the next click is positive at the first
argmax of ``d_FN`` (raster order), else negative at that of ``d_FP``. Deterministic.

A click marks a disk of radius 5 px (3D: a ball of radius 5 voxels of the finest
spacing, round in physical units). Its voxels are the "clicked" voxels: none of them is
clicked again, and they become seeds (positive) or background (negative) for the
method; a new disk takes over any voxels of an older disk of the other sign, so no
voxel is ever marked both ways.

References
----------
.. [1] N. Xu, B. Price, S. Cohen, J. Yang, T. Huang, "Deep interactive object
       selection", CVPR 2016. :DOI:`10.1109/CVPR.2016.47`
.. [2] K. Sofiiuk, I. A. Petrov, A. Konushin, "Reviving iterative training with mask
       guidance for interactive segmentation", ICIP 2022. :DOI:`10.1109/ICIP46576.2022.9897365`
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

RADIUS = 5  # click radius in finest voxels


@dataclass(frozen=True)
class Click:
    """One simulated click: the voxel index and whether it says "object"."""

    position: tuple
    positive: bool


def _border_distance(region, spacing):
    """Distance of each voxel of ``region`` to its border, the image border included."""
    padded = np.pad(region, 1, constant_values=False)
    inner = tuple(slice(1, -1) for _ in region.shape)
    return ndi.distance_transform_edt(padded, sampling=spacing)[inner]


def next_click(truth, prediction, *, ignore=None, clicked=None, spacing=None):
    """Where the next click goes, or None when nothing is left to correct.

    Parameters
    ----------
    truth, prediction : (M, N[, P]) array_like of bool
        The object and the current result (nonzero = object).
    ignore : (M, N[, P]) array_like of bool, optional
        Voxels that are neither object nor background (GrabCut's 255 band).
    clicked : (M, N[, P]) array_like of bool, optional
        Voxels already clicked; they are never clicked again.
    spacing : sequence of float, optional
        Voxel size per axis; distances are physical. None = 1 per axis.

    Returns
    -------
    Click or None
        None when no unclicked voxel is a false negative or a false positive.
    """
    truth = np.asarray(truth, bool)
    prediction = np.asarray(prediction, bool)
    if truth.shape != prediction.shape:
        raise ValueError(f"`truth` has shape {truth.shape} but `prediction` has shape "
                         f"{prediction.shape}; pass masks of the same image.")
    spacing = tuple(spacing) if spacing is not None else (1.0,) * truth.ndim
    counted = ~np.asarray(ignore, bool) if ignore is not None else np.ones(truth.shape, bool)
    free = ~np.asarray(clicked, bool) if clicked is not None else np.ones(truth.shape, bool)
    depths = []
    for error in (truth & ~prediction & counted, ~truth & prediction & counted):
        depth = _border_distance(error, spacing)
        depth[~free] = 0
        depths.append(depth)
    fn_depth, fp_depth = depths
    fn_max, fp_max = fn_depth.max(), fp_depth.max()
    if fn_max == 0 and fp_max == 0:
        return None
    positive = bool(fn_max > fp_max)
    depth = fn_depth if positive else fp_depth
    return Click(tuple(int(i) for i in np.unravel_index(np.argmax(depth), depth.shape)), positive)


def click_region(shape, position, *, spacing=None, radius=RADIUS):
    """The voxels a click marks: a disk (ball) of ``radius`` finest voxels, round physically.

    Parameters
    ----------
    shape : tuple of int
        Spatial shape of the image.
    position : tuple of int
        The clicked voxel.
    spacing : sequence of float, optional
        Voxel size per axis; None = 1 per axis.
    radius : float, optional
        Radius in voxels of the finest axis.

    Returns
    -------
    (M, N[, P]) ndarray of bool
    """
    spacing = tuple(spacing) if spacing is not None else (1.0,) * len(shape)
    reach = radius * min(spacing)
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    distance2 = sum(((g - c) * h) ** 2 for g, c, h in zip(grid, position, spacing))
    return distance2 <= reach**2


class ClickMarks:
    """The marks left by the clicks so far: positive and negative disks.

    Parameters
    ----------
    shape : tuple of int
        Spatial shape of the image.
    spacing : sequence of float, optional
        Voxel size per axis (the disks are round in physical units).
    """

    def __init__(self, shape, spacing=None):
        self.spacing = spacing
        self.positive = np.zeros(shape, bool)
        self.negative = np.zeros(shape, bool)
        self.clicks = []

    @property
    def clicked(self):
        """Every voxel under a click so far."""
        return self.positive | self.negative

    def add(self, click):
        """Mark ``click``'s disk; it takes over older disks of the other sign."""
        disk = click_region(self.positive.shape, click.position, spacing=self.spacing)
        mine, other = (self.positive, self.negative) if click.positive else (self.negative, self.positive)
        mine |= disk
        other &= ~disk
        self.clicks.append(click)


def first_reaching(ious, threshold, max_clicks):
    """NoC: the number of clicks after which the IoU first reaches ``threshold``.

    ``ious[k]`` is the IoU after ``k + 1`` clicks; ``max_clicks`` if it never does.
    """
    for count, iou in enumerate(ious[:max_clicks], 1):
        if iou >= threshold:
            return count
    return max_clicks
