r"""A mark on one slice of a volume seeds a 3D object (``scope="inside"``).

A box drawn on one slice of a stack (or on a few adjacent slices) bounds the object in the
plane of that slice; along the stack the object extends as far as the evidence goes. The
box alone would make a region one slice thick, and the heat method could not leave it.
:func:`seed_along_stack` turns such a start into a 3D one:

1. :func:`flat_axis` finds the stack axis: the mark spans at most a few slices along it
   and is thin there compared with its extent in the plane.
2. :func:`stack_extent` walks from the marked slices outward and keeps a slice while the
   mark's footprint (the box, projected along the stack) still holds what the box held on
   its own slice. With :math:`m_i` the mean (per channel) inside the footprint on slice
   :math:`i`, :math:`r_i` the mean in a band around it, and :math:`c = m_0 - r_0` the
   contrast on the marked slice, the walk stops at the first slice where

   - the object faded: its relative contrast :math:`\kappa_i = (m_i - r_i) \cdot c / |c|^2`
     fell below ``min_contrast`` (the slice is kept: the object may end within it), or
   - it passed a waist: :math:`\kappa` fell to :math:`\kappa_{min} \le 1 /` ``regrowth``
     and rose again above ``regrowth`` :math:`\kappa_{min}`: another object stacked on this
     one begins (the walk ends at the waist's slice), or
   - the footprint holds another structure: the drift :math:`d = (m_i - m_0) / |c|` has a
     part away from the background (along :math:`+c`) or across it longer than
     ``max_drift`` (the slice is left out). A drift towards the background is fading, which
     the first test measures.

   Both tests are free of the intensity scale and offset. ``min_contrast`` is slice
   propagation's (:func:`~napari_heatseg.core.stack.iter_stack`); ``max_drift`` is 1: the
   footprint then differs from the object more than the object differs from its
   background. Measured in the footprint of a box on brain1's middle slice, true tumour
   slices drift up to 0.86 (0.75 stopped the walk one slice from the box); a brighter
   structure in the phantoms of ``tests/core/test_seeding.py`` drifts 1.5. ``regrowth``
   was chosen on the stacked, touching nuclei of ``nuclei3d_synthetic`` (median 3D IoU of
   a box on each nucleus's middle slice: 0.35 without the test, 0.58, 0.56, 0.42, 0.39
   for 1.1, 1.2, 1.5, 2; 1.2 leaves a margin over slice-to-slice noise); cells3d's
   nuclei, brain1 and the phantoms do not pass a waist.
3. The start becomes the footprint extruded over those slices: the region the object may
   fill. The heat method then runs in 3D within it, and every step keeps only the pieces
   that meet the mark (:meth:`~napari_heatseg.core.scope.Scope.finish`), so nothing that
   merely lies in the same column of the stack joins the object.
"""

from dataclasses import replace

import numpy as np
from scipy import ndimage

from .evidence import MIN_CONTRAST  # as slice propagation's check (core.stack.iter_stack)
from .morphology import bounding_box, depth

__all__ = ["flat_axis", "seed_along_stack", "stack_extent"]

MAX_DRIFT = 1.0
REGROWTH = 1.2


def flat_axis(phases, spacing, max_slices=3):
    """The stack axis of a mark drawn on one slice (or up to ``max_slices`` adjacent ones) of
    a volume, or None.

    The mark must be thinner along the axis, in physical units, than half its smallest
    extent in the plane, and the volume must have slices beyond it. Of several such axes,
    the one the mark spans fewest slices of (then the coarsest) is the stack axis.
    """
    if phases.ndim != 3 or not phases.any():
        return None
    extents = [b.stop - b.start for b in bounding_box(phases > 0, [0] * 3)]
    lengths = [n * h for n, h in zip(extents, spacing)]
    flat = [a for a in range(3)
            if extents[a] <= max_slices and phases.shape[a] > extents[a]
            and 2 * lengths[a] < min(lengths[b] for b in range(3) if b != a)]
    if not flat:
        return None
    return min(flat, key=lambda a: (extents[a], -spacing[a]))


def _slice_means(image, valid, mask):
    """(S, C) mean of ``image`` (S, M, N, C) over the voxels of the 2D ``mask`` on every
    slice, counting valid voxels only (NaN where a slice has none)."""
    weights = valid[:, mask].astype(np.float64)
    sums = np.einsum("sv,svc->sc", weights, image[:, mask].astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / weights.sum(axis=1)[:, None]


def stack_extent(image, valid, footprint, marked, spacing, min_contrast=MIN_CONTRAST, max_drift=MAX_DRIFT,
                 regrowth=REGROWTH):
    """The slices ``(first, last)`` an object marked by ``footprint`` on slices ``marked``
    extends over (see the module's description of the walk).

    Parameters
    ----------
    image : (S, M, N, C) ndarray
        The prepared image with the stack axis first.
    valid : (S, M, N) ndarray of bool
    footprint : (M, N) ndarray of bool
        The mark projected along the stack.
    marked : (first, last)
        The slices the mark lies on.
    spacing : (float, float)
        In-plane voxel size; the band around the footprint is half the footprint's depth wide.
    """
    first, last = marked
    distance = ndimage.distance_transform_edt(~footprint, sampling=spacing)
    band = (distance > 0) & (distance <= 0.5 * max(depth(footprint, spacing), min(spacing)))
    inside, around = _slice_means(image, valid, footprint), _slice_means(image, valid, band)
    reference = np.nanmean(inside[first:last + 1], axis=0)
    contrast = reference - np.nanmean(around[first:last + 1], axis=0)
    size2 = float(contrast @ contrast)
    if not size2 > 0:  # the mark holds nothing that differs from its surroundings
        return first, last

    def relative_contrast(i):
        return float((inside[i] - around[i]) @ contrast) / size2

    def other_structure(i):
        drift = (inside[i] - reference) / np.sqrt(size2)
        along = float(drift @ contrast) / np.sqrt(size2)
        across2 = max(float(drift @ drift) - along**2, 0.0)
        return max(along, 0.0) ** 2 + across2 > max_drift**2

    ends = []
    for end, step in ((first, -1), (last, 1)):
        smallest, at_smallest = 1.0, end
        i = end + step
        while 0 <= i < len(image) and not np.isnan(inside[i]).any() and not np.isnan(around[i]).any():
            if other_structure(i):
                break
            c = relative_contrast(i)
            if smallest <= 1 / regrowth and c > regrowth * smallest:  # a waist: another object begins
                end = at_smallest
                break
            end = i
            if c < min_contrast:  # faded: the object may end within this slice
                break
            if c < smallest:
                smallest, at_smallest = c, i
            i += step
        ends.append(end)
    return ends[0], ends[1]


def seed_along_stack(prepared):
    """``prepared`` with a one-slice ``"inside"`` start extruded along the stack, and the
    start as drawn (the anchor the object must meet); ``(prepared, None)`` when the start is
    not a mark on one slice of a volume or the scope is not ``"inside"``.

    Each label's footprint extends over the slices :func:`stack_extent` finds for it.
    """
    if prepared.scope != "inside":
        return prepared, None
    axis = flat_axis(prepared.phases, prepared.spacing)
    if axis is None:
        return prepared, None
    phases = np.moveaxis(prepared.phases, axis, 0)
    image = np.moveaxis(prepared.image, axis, 0)
    valid = np.moveaxis(prepared.valid, axis, 0)
    in_plane = tuple(h for a, h in enumerate(prepared.spacing) if a != axis)
    extruded = np.zeros_like(phases)
    for k in range(1, prepared.n_labels + 1):
        mark = phases == k
        footprint = mark.any(axis=0)
        slices = np.flatnonzero(mark.any(axis=(1, 2)))
        if not slices.size:
            continue
        first, last = stack_extent(image, valid, footprint, (slices[0], slices[-1]), in_plane)
        column = extruded[first:last + 1]
        column[footprint & (column == 0)] = k
    extruded[phases > 0] = phases[phases > 0]  # each label keeps its own mark where footprints overlap
    return replace(prepared, phases=np.moveaxis(extruded, 0, axis)), prepared.phases
