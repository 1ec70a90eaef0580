"""Common start mistakes, caught before they give a silent wrong answer.

Three mistakes a new user makes, each met on real images (issue 18):

- **a graded start**: a soft-edged brush stroke (blurred or anti-aliased: dozens of values
  ramping from the edge inwards) or a mask saved as JPEG (compression noise: rare values
  near 0 and near the label) read as dozens of labels. :func:`check_start` binarises it,
  with a warning that says which it looks like and how it was binarised;
- **a box with the default scope**: a filled rectangle, cuboid or convex polygon drawn
  *around* an object, grown as if it were a mark *inside* one. With ``scope=None`` (the
  default) :func:`check_start` uses ``"inside"`` for such a start (unless it is small or
  its content is plainly like its surroundings: a mark in a uniform object), ``"object"``
  otherwise;
- **scope "inside" around nothing**: a blob inside the object with ``scope="inside"`` has
  nothing inside it to find; :func:`warn_if_inside_found_nothing` says so.

A start whose labels are blobs (one value each, however many) is never changed.
"""

import warnings
from dataclasses import replace

import numpy as np
from scipy import ndimage as ndi

__all__ = ["check_start", "graded_start", "is_box_around_something", "resolve_scope", "warn_if_inside_found_nothing"]

MIN_GRADED_VALUES = 5  # fewer distinct values are read as labels, whatever their shapes
MIN_BOX_SIDE = 10  # voxels: smaller filled squares are blobs
_STANDS_OUT = 0.3  # standardised difference of a box's core from the band around it
_ROUND = 0.85  # area / area of the disk of the same diameter, from which a convex mask is a disk


def check_start(prepared, stacklevel=3):
    """Binarise a graded start and choose the scope for ``scope=None``.

    Parameters
    ----------
    prepared : Prepared
        From :func:`~napari_heatseg.core.inputs.prepare`; ``prepared.scope`` is None when
        the caller left the choice to :func:`resolve_scope`.
    stacklevel : int
        Of the warning, as for :func:`warnings.warn` (the default points at the caller
        of the public function that calls this).

    Returns
    -------
    Prepared
        With a binary start if the start was graded (:func:`graded_start`), and a scope.
    """
    graded = graded_start(prepared.phases, prepared.label_values)
    if graded is not None:
        kind, threshold = graded
        label = prepared.label_values[-1:]
        above = prepared.label_values > threshold
        phases = above[np.maximum(prepared.phases, 1) - 1] & (prepared.phases > 0)
        warnings.warn(
            f"`start` has {prepared.n_labels} distinct values that look like {kind}, not "
            f"{prepared.n_labels} labels; it was binarised: values above half its maximum "
            f"(above {threshold:g}) became one label, {label[0]}, and the rest unmarked. To "
            f"choose yourself, pass integer labels (for example (start > {threshold:g}) * "
            f"{label[0]}).", UserWarning, stacklevel=stacklevel)
        prepared = replace(prepared, phases=phases.astype(np.uint8), label_values=label)
    return replace(prepared, scope=resolve_scope(prepared))


def graded_start(phases, label_values):
    """``(kind, threshold)`` if the start's values are grades of one mask, else None.

    Each value of a label image is a blob: most of its voxels have only that value around
    them. A graded start's values are thin bands or specks between other marked values
    (the ramp of a blurred edge, the ringing of a compressed one). A value is *graded*
    when fewer than half of its voxels are interior (all face neighbours equal) and it
    touches another marked value; the start is graded when it has at least
    :data:`MIN_GRADED_VALUES` values and half of them are graded. (Instance label images
    of every development set have at most 5 % graded values; soft and JPEG starts of a
    coin nearly 100 %.) It is compression noise if under 5 % of the marked voxels lie in
    the middle half of the value range (rare values near 0 and near the label), else a
    soft mask.
    """
    n_values = len(label_values)
    if n_values < MIN_GRADED_VALUES or label_values.dtype == bool:
        return None
    interior = np.ones(phases.shape, bool)
    touches_other = np.zeros(phases.shape, bool)
    for axis in range(phases.ndim):
        if phases.shape[axis] < 2:
            continue
        for a, b in ((slice(1, None), slice(None, -1)), (slice(None, -1), slice(1, None))):
            here, there = _along(axis, a, phases.ndim), _along(axis, b, phases.ndim)
            differs = phases[here] != phases[there]
            interior[here] &= ~differs
            touches_other[here] |= differs & (phases[there] > 0)
    counts = np.bincount(phases.ravel(), minlength=n_values + 1)[1:]
    interior_counts = np.bincount(phases[interior], minlength=n_values + 1)[1:]
    touching = np.bincount(phases[touches_other], minlength=n_values + 1)[1:]
    graded = (interior_counts < counts / 2) & (touching > 0)
    if graded.sum() * 2 < n_values:
        return None
    top = float(label_values[-1])
    values = label_values.astype(np.float64)
    middle = counts[(values > top / 4) & (values < 3 * top / 4)].sum()
    kind = ("compression noise (a mask saved as JPEG)" if middle < 0.05 * counts.sum()
            else "a soft-edged mask (a blurred or anti-aliased brush stroke)")
    return kind, top / 2


def _along(axis, part, ndim):
    index = [slice(None)] * ndim
    index[axis] = part
    return tuple(index)


def resolve_scope(prepared):
    """The scope to use: the one given, or for None ``"inside"`` if every label is a box
    around something (:func:`is_box_around_something`), else ``"object"``."""
    if prepared.scope is not None:
        return prepared.scope
    boxes = all(region is not None and is_box_around_something(prepared, label, region)
                for label, region in enumerate(ndi.find_objects(prepared.phases), start=1))
    return "inside" if boxes else "object"


def is_box_around_something(prepared, label, region):
    """Is phase ``label`` (bounding box ``region``) a box drawn around something?

    Its shape must be a box: its filled bounding box (a rectangle, a cuboid, or a
    rectangle on one slice of a volume), or a filled convex polygon or ellipse in a plane
    that is not round (:func:`_is_convex_outline`: disks and balls stay marks), at least
    :data:`MIN_BOX_SIDE` voxels across in its plane. And its content must not be
    plainly like what surrounds it, or there is nothing inside it to find: this tells a
    square painted inside a uniform object (a mark for ``"object"``) from a box. The mean
    of the box's core (the box less a rim a tenth of its width deep) must differ from the
    mean of a band around the box, as deep as that rim, by at least :data:`_STANDS_OUT`
    of the band's standard deviation (per channel, at least 2 % of the normalised range;
    the Euclidean norm over channels).

    Measured (development data): tight bounding boxes of the 32 natural photos score
    0.13-5.1 (31 above 0.3); squares inside uniform noisy disks 0.06 at the median,
    0.36 at the 99th percentile. Squares inside the photos' objects score 0.07-3.6, as
    boxes do: no statistic of the image told them apart, so such a square counts as a
    box (the scope given explicitly overrides the choice).
    """
    mask = prepared.phases[region] == label
    flat_axes = [axis for axis, n in enumerate(mask.shape) if n > 1]
    if sum(mask.shape[axis] >= MIN_BOX_SIDE for axis in flat_axes) < 2:
        return False  # a line, a click or a small blob (a cuboid may be thin across slices)
    if not (mask.all() or (len(flat_axes) == 2 and _is_convex_outline(np.squeeze(mask)))):
        return False
    depth = max(1, int(round(0.1 * min(mask.shape[axis] for axis in flat_axes))))
    grown = tuple(slice(max(r.start - depth, 0), r.stop + depth) if axis in flat_axes else r
                  for axis, r in enumerate(region))
    label_mask = prepared.phases[grown] == label
    valid = prepared.valid[grown]
    structure = np.zeros((3,) * mask.ndim, bool)  # face neighbours within the plane of the box
    for axis in flat_axes:
        for side in (0, 2):
            structure[tuple(side if a == axis else 1 for a in range(mask.ndim))] = True
    structure[(1,) * mask.ndim] = True
    core = ndi.binary_erosion(label_mask, structure, iterations=depth, border_value=0) & valid
    band = ndi.binary_dilation(label_mask, structure, iterations=depth) & ~label_mask & valid
    if core.sum() < 4 or band.sum() < 4:
        return False
    image = prepared.image[grown]
    band_values = image[band]
    spread = np.maximum(band_values.std(axis=0), 0.02)
    difference = (image[core].mean(axis=0) - band_values.mean(axis=0)) / spread
    return float(np.sqrt(np.sum(difference**2))) >= _STANDS_OUT


def _is_convex_outline(mask):
    """Is the 2D ``mask`` a filled convex polygon or ellipse, at least :data:`MIN_BOX_SIDE`
    across, and not round?

    Convex and filled: it holds every pixel of its pixel centres' convex hull, counted by
    Pick's theorem (area + boundary lattice points / 2 + 1). Not round: its area is below
    :data:`_ROUND` of the disk of its diameter (regular hexagons have 0.83, octagons 0.90,
    disks 1), so a disk or a ball's section stays a mark. Its width is the smallest
    distance between parallel lines holding it (a hull edge and the farthest vertex).
    """
    from scipy.spatial import ConvexHull, QhullError

    points = np.argwhere(mask)
    try:
        hull = ConvexHull(points)
    except QhullError:  # all points on a line
        return False
    corners = points[hull.vertices]
    edges = np.roll(corners, -1, axis=0) - corners
    boundary_points = np.gcd(np.abs(edges[:, 0]), np.abs(edges[:, 1])).sum()
    if mask.sum() < 0.99 * (hull.volume + boundary_points / 2 + 1):  # 2D: volume is the area
        return False
    normals = np.stack([-edges[:, 1], edges[:, 0]], axis=1) / np.hypot(edges[:, 0], edges[:, 1])[:, None]
    width = np.min(np.ptp((corners - corners[0]) @ normals.T, axis=0)) + 1
    diameter = np.max(np.hypot(*(corners[:, None] - corners[None]).transpose(2, 0, 1))) + 1
    return bool(width >= MIN_BOX_SIDE and mask.sum() < _ROUND * np.pi / 4 * diameter**2)


def warn_if_inside_found_nothing(phases, prepared, stacklevel=3):
    """Warn if ``scope="inside"`` gave a label nothing: the mark holds no object."""
    if prepared.scope != "inside":
        return
    found = np.bincount(phases.ravel(), minlength=prepared.n_labels + 1)[1:]
    empty = prepared.label_values[found == 0]
    if empty.size:
        which = "nothing" if empty.size == prepared.n_labels else (
            f"nothing for label(s) {', '.join(map(str, empty.tolist()))}")
        warnings.warn(
            f"scope='inside' found {which}: it looks for an object within the marked region, "
            f"against what surrounds it, and the marked region holds nothing that differs "
            f"from its surroundings. If the start is a mark inside the object (not a box or "
            f"outline around it), use scope='object'.", UserWarning, stacklevel=stacklevel)
