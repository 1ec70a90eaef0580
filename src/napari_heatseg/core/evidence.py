r"""Whether a grown region is still the object it grew from: contrast with its surroundings and drift.

One rule, used where growth must stop when the evidence ends: ``scope="object"``'s reach
(:mod:`.reach`) and slice propagation (:mod:`.stack`, whose per-slice checks and stop records
:func:`drop_lost` and :func:`drop_changed` are here). A region :math:`R` (the object, or
the part added since the last check) is compared with a reference state of the object
(mean :math:`m_0`, contrast :math:`c_0` = mean inside minus mean in a ring around it, per
channel):

- **faded**: its own contrast projected on the reference one,
  :math:`\langle c, c_0 \rangle / \|c_0\|^2`, fell below ``min_contrast`` (the object
  blends into its surroundings: growth would continue into similar tissue);
- **drifted**: its mean moved from the reference by more than ``max_drift`` reference
  contrasts, :math:`\|m - m_0\| / \|c_0\| >` ``max_drift`` (it turned into another,
  brighter or darker, structure).

Both are ratios of intensity differences, so the rule does not change when the image is
scaled or shifted; rings are measured in physical units.
"""

from typing import NamedTuple

import numpy as np
from scipy import ndimage

from .distance import distance_to

__all__ = ["MAX_DRIFT", "MIN_CONTRAST", "REASONS", "StackStop", "contrast", "drop_changed",
           "drop_lost", "label_contrasts", "ring", "verdict"]

MIN_CONTRAST = 0.25
"""Default ``min_contrast``: a region keeping less than a quarter of the reference contrast has faded."""

MAX_DRIFT = 0.75
"""Default ``max_drift``. Measured on brain1 (slice propagation): true tumour slices drift
<= 0.4 reference contrasts, leaks into neighbouring structures >= 1."""


def ring(mask, width, spacing=None, within=None):
    """The voxels outside ``mask`` within ``width`` of it (physical units of ``spacing``;
    None: ``width`` voxels), restricted to ``within`` if given. Computed on the bounding box
    of ``mask`` grown by ``width``."""
    spacing = (1.0,) * mask.ndim if spacing is None else tuple(spacing)
    found = ndimage.find_objects(mask.astype(np.int8))
    out = np.zeros(mask.shape, dtype=bool)
    if not found:
        return out
    grow = [int(np.ceil(width / h)) + 1 for h in spacing]
    box = tuple(slice(max(b.start - g, 0), min(b.stop + g, n)) for b, g, n in zip(found[0], grow, mask.shape))
    near = distance_to(mask[box], spacing) <= width
    out[box] = near & ~mask[box]
    if within is not None:
        out &= within
    return out


def contrast(image, inside, around):
    """``(mean, contrast)`` of a region: the mean of ``image`` (channels last) over
    ``inside``, and that mean minus the mean over ``around``; None if either is empty.
    NaN voxels are left out."""
    if not inside.any() or not around.any():
        return None
    mean = np.nanmean(image[inside], axis=0)
    return mean, mean - np.nanmean(image[around], axis=0)


def verdict(state, reference, min_contrast=MIN_CONTRAST, max_drift=MAX_DRIFT):
    """Why ``state`` (a :func:`contrast` pair) is no longer the object of ``reference``:
    ``"faded"``, ``"drifted"``, or None when it still is (or when the reference has no
    contrast to measure by). ``min_contrast=-inf`` judges the drift alone (``state``'s
    contrast may then be None)."""
    if state is None or reference is None:
        return None
    mean, own = state
    ref_mean, ref_contrast = reference
    size2 = float(np.dot(ref_contrast, ref_contrast))
    if not size2 > 0:
        return None
    if np.isfinite(min_contrast) and np.dot(own, ref_contrast) / size2 < min_contrast:
        return "faded"
    if np.sqrt(np.dot(mean - ref_mean, mean - ref_mean) / size2) > max_drift:
        return "drifted"
    return None


# ------------------------------------------------------------ slice propagation's checks

def drop_lost(labels, previous, max_area_ratio, min_area):
    """Remove labels that vanished or whose area jumped from the previous slice's; returns
    ``(labels, {value: reason})``."""
    out, dropped = labels.copy(), {}
    for value in np.unique(previous[previous != 0]):
        before = np.count_nonzero(previous == value)
        after = np.count_nonzero(labels == value)
        if after < min_area or after > max_area_ratio * before:
            out[labels == value] = 0
            dropped[value] = "vanished" if after < min_area else "leaked"
    return out, dropped


def label_contrasts(labels, image, channel_axis, width=3):
    """Per label of ``labels``: its :func:`contrast` in ``image`` (channels on
    ``channel_axis``) with a ring ``width`` pixels wide."""
    image = np.asarray(image, dtype=np.float64)
    image = image[..., None] if channel_axis is None else np.moveaxis(image, channel_axis, -1)
    out = {}
    for value in np.unique(labels[labels != 0]):
        mask = labels == value
        state = contrast(image, mask, ring(mask, width))
        if state is not None:
            out[value] = state
    return out


def drop_changed(labels, image, channel_axis, reference, min_contrast, max_drift):
    """Remove labels that faded out or turned into another structure, compared with
    ``reference`` (per label, a :func:`contrast` pair; :func:`verdict`); returns
    ``(labels, {value: reason})``."""
    out, dropped = labels.copy(), {}
    for value, state in label_contrasts(labels, image, channel_axis).items():
        why = verdict(state, reference.get(value), min_contrast, max_drift)
        if why is not None:
            out[labels == value] = 0
            dropped[value] = why
    return out, dropped


REASONS = {  # why slice propagation stopped a label (:mod:`.stack`): the checks here, and the area ones there
    "vanished": "its area fell below `min_area`",
    "leaked": "its area grew more than `max_area_ratio` times from the slice before (a leak)",
    "faded": "its contrast with the surroundings fell below `min_contrast` of the annotated slice's",
    "drifted": "its mean moved more than `max_drift` annotated contrasts (another structure)",
}


class StackStop(NamedTuple):
    """Where and why propagation of one label stopped (``mode="propagate"``).

    Attributes
    ----------
    label : int
        The label value.
    index : int
        The slice (along the stack axis) where the label was dropped; it is left empty
        there and beyond, in the direction of ``step``.
    step : int
        The direction of propagation: -1 (towards slice 0) or +1.
    reason : {'vanished', 'leaked', 'faded', 'drifted'}
        Which check failed (:data:`REASONS` says what each means).
    """

    label: int
    index: int
    step: int
    reason: str

    def __str__(self):
        return (f"label {self.label} stopped at slice {self.index} (propagating towards "
                f"{'higher' if self.step > 0 else 'lower'} slices): {REASONS[self.reason]}")
