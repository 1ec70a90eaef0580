"""The geometry of the scopes: regions of interest and connected, solid objects.

The hot morphology of :mod:`napari_heatseg.core.scope` has its home here, and works on
bounded boxes rather than on the whole grid wherever that gives the same answer:

- :func:`object_domain` and :func:`inside_domain`: where labels may go (``"object"``: a
  neighbourhood of each mark that holds background; ``"inside"``: the marked region and a
  band around it);
- :func:`as_objects` (``"object"``'s face-connected, hole-free objects, each label on its
  bounding box), :func:`meeting` (an anchored ``"inside"``'s pieces that meet the mark) and
  :func:`keep_touching` (the baselines' fully connected pieces that meet the mark);
- :func:`bounding_box` and :func:`depth` (a mark's largest inner distance).
"""

import numpy as np
from scipy import ndimage

from .distance import distance_to

__all__ = ["as_objects", "bounding_box", "depth", "fill_holes", "half_unlike_distance", "inside_domain",
           "keep_touching", "meeting", "object_domain", "without_necks"]


def bounding_box(mask, margin):
    """Slices of the bounding box of ``mask``, grown by ``margin`` voxels per axis."""
    box = ndimage.find_objects(mask.astype(np.int8))[0]
    return tuple(slice(max(b.start - m, 0), min(b.stop + m, n)) for b, m, n in zip(box, margin, mask.shape))


def depth(mark, spacing):
    """Largest distance from a voxel of ``mark`` to the nearest unmarked voxel (the radius of
    a drawn ball), computed on the mark's bounding box grown by one voxel."""
    box = bounding_box(mark, [1] * mark.ndim)
    return distance_to(~mark[box], spacing).max()


# ------------------------------------------------------------------------- regions of interest

def object_domain(image, valid, start, n_labels, spacing, reach, min_std, extents=None):
    """Region of interest of ``scope="object"``: a neighbourhood of each mark holding background.

    Its radius (beyond the mark) is the larger of ``reach`` mark depths (the depth is the
    largest inner distance: the radius of a drawn ball) and twice the distance within which
    half of the pixels do not look like the mark (farther than 2 standard deviations, floored
    at ``min_std``, from its mean). Outside, nothing can be labelled and no data is read, so a
    label cannot leak into far, similar tissue and the background model stays local; yet a
    small mark deep inside a large object still sees the object's surroundings.

    The distances are computed on a box around the mark that holds every voxel within the
    radius (:func:`_near_mark`), not on the whole image; the result is the same.

    ``extents``, a dict if given, receives for each label ``(extent, box, distance)``: its
    apparent extent, the larger of ``reach`` mark depths and the half-unlike distance (half
    the domain's radius beyond the mark when that distance sets it), the farthest a
    ``scope="object"`` label may grow (:class:`~.reach.Reach`); and the distance to its mark
    on ``box``, exact up to at least that far (so the frontier need not compute it again).
    """
    domain = np.zeros(start.shape, dtype=bool)
    for k in range(1, n_labels + 1):
        mark = start == k
        samples = image[mark & valid]
        margin = reach * max(depth(mark, spacing), 1.0)
        if not len(samples):
            box, distance, _ = _near_mark(mark, spacing, margin)
            domain[box] |= distance <= margin
            if extents is not None:
                extents[k] = margin, box, distance
            continue
        mean, spread = samples.mean(axis=0), np.maximum(samples.std(axis=0), min_std)
        radius = margin
        while True:
            box, distance, whole = _near_mark(mark, spacing, radius)
            unlike = np.any(np.abs(image[box] - mean) > 2 * spread, axis=-1)
            inside = valid[box]
            half = half_unlike_distance(distance[inside], unlike[inside])
            # the box holds every voxel within ``radius`` in the whole grid's order, so a
            # ``half`` up to ``radius`` is the whole grid's; else look farther
            if not whole and (half is None or half > radius):
                radius = 2 * radius if radius > 0 else min(spacing)
                continue
            needed = margin if half is None else max(margin, 2 * half)
            if whole or needed <= radius:
                break
            radius = needed
        domain[box] |= distance <= needed
        if extents is not None:
            extents[k] = (margin if half is None else max(margin, half)), box, distance
    return domain


def _near_mark(mark, spacing, radius):
    """The distance to ``mark`` on a box around it that holds every voxel within ``radius``.

    Every mark voxel lies in the box, so the distances in it are those of the whole grid; a
    voxel outside is more than ``ceil(radius / h) + 1`` voxels of size ``h`` away along
    some axis, so farther than ``radius``. Returns ``(box, distance, whole)``, ``whole``
    telling whether the box is the whole grid.
    """
    grow = [int(np.ceil(radius / h)) + 1 if np.isfinite(radius / h) else n
            for h, n in zip(spacing, mark.shape)]
    box = bounding_box(mark, grow)
    whole = all(b.start == 0 and b.stop == n for b, n in zip(box, mark.shape))
    return box, distance_to(mark[box], spacing), whole


def half_unlike_distance(distance, unlike, n_bins=1024):
    """The distance of the first voxel, in order of ``distance`` (ties: in array order), at
    which at least half of the voxels so far are ``unlike``; None if there is none.

    Exact, without sorting every voxel: the voxels are binned by distance (bins keep the
    order), and only a bin where the share can reach one half is sorted.
    """
    top = float(distance.max())
    bins = (distance * (n_bins / top) if top > 0 else np.zeros_like(distance)).astype(np.intp)
    np.minimum(bins, n_bins - 1, out=bins)
    counts = np.bincount(bins, minlength=n_bins)
    unlike_counts = np.bincount(bins[unlike], minlength=n_bins)
    before = np.concatenate([[0], np.cumsum(counts)[:-1]])
    unlike_before = np.concatenate([[0], np.cumsum(unlike_counts)[:-1]])
    # the largest share within a bin: its unlike voxels first
    reachable = 2 * (unlike_before + unlike_counts) >= before + np.maximum(unlike_counts, 1)
    for b in np.flatnonzero(reachable & (counts > 0)):
        members = np.flatnonzero(bins == b)
        order = members[np.argsort(distance[members], kind="stable")]
        share = (unlike_before[b] + np.cumsum(unlike[order])) / (before[b] + np.arange(1, order.size + 1))
        first = np.flatnonzero(share >= 0.5)
        if first.size:
            return float(distance[order[first[0]]])
    return None


def inside_domain(region, spacing, band=0.5):
    """Region of interest of ``scope="inside"``: the marked region and a band around it.

    The band is ``band`` times the region's depth (its largest inner distance: half the
    short side of a box) wide. The background model is learned there, from the object's
    surroundings, rather than from the whole image, whose far parts often hold colours
    that also occur in the object.
    """
    marked = region > 0
    return distance_to(marked, spacing) <= band * max(depth(marked, spacing), 1.0)


# ---------------------------------------------------------------------------------- objects

def _enclosed(mask, axes):
    """Background voxels of ``mask`` that no face-connected path along ``axes`` links to the
    edge of its bounding box: the holes (what ``ndimage.binary_fill_holes`` fills, found
    with one labelling instead of repeated erosions, within the bounding box only)."""
    box = ndimage.find_objects(mask.astype(np.int8))
    holes = np.zeros(mask.shape, dtype=bool)
    if not box:
        return holes
    structure = np.zeros((3,) * mask.ndim, dtype=bool)
    centre = (1,) * mask.ndim
    structure[centre] = True
    for axis in axes:
        for step in (0, 2):
            structure[centre[:axis] + (step,) + centre[axis + 1:]] = True
    background, _ = ndimage.label(~mask[box[0]], structure)
    edge = np.zeros(background.shape, dtype=bool)
    for axis in axes:
        edge[(slice(None),) * axis + (0,)] = edge[(slice(None),) * axis + (-1,)] = True
    outside = np.unique(background[edge])
    holes[box[0]] = (background > 0) & ~np.isin(background, outside)
    return holes


def fill_holes(mask, spacing):
    """Fill enclosed holes, in 3D and in every plane across the thickest axis."""
    filled = mask | _enclosed(mask, range(mask.ndim))
    if mask.ndim == 3:  # planes: connectivity only along the two other axes
        thickest = int(np.argmax(spacing))
        filled |= _enclosed(filled, [a for a in range(3) if a != thickest])
    return filled


def as_objects(phases, previous, seeds, n_labels, spacing, neck=None):
    """Per label, cut its necks narrower than ``2 neck`` mark depths (:func:`without_necks`),
    keep the components touching its seed (or, failing that, the largest), and fill the
    holes they enclose: ``scope="object"`` answers solid, connected objects that reach no
    similar region through a thin passage (None: no neck cut).
    A label about to vanish keeps its previous extent: the mark says an object is there.

    Each label is treated on its bounding box only (its components and holes lie there).
    """
    out = phases.copy()
    boxes = ndimage.find_objects(phases, n_labels)
    for k, box in enumerate(boxes, start=1):
        if box is None:
            mask = (previous == k) & (out == 0)
            if not mask.any():
                continue
            out[mask] = k
            box = bounding_box(mask, [0] * mask.ndim)
        region = out[box]  # a view: writes go to ``out``
        mask = region == k
        if neck is not None and (seeds[box] == k).any():
            radius = neck * max(depth(seeds == k, spacing), min(spacing))
            region[mask & ~without_necks(mask, seeds[box] == k, radius, spacing)] = 0
            mask = region == k
        components, n = ndimage.label(mask)
        if n > 1:
            touched = np.unique(components[(seeds[box] == k) & mask])
            touched = touched[touched > 0]
            if touched.size == 0:
                sizes = np.bincount(components.ravel())[1:]
                touched = np.array([np.argmax(sizes) + 1])
            region[mask & ~np.isin(components, touched)] = 0
            mask = region == k
        region[fill_holes(mask, spacing) & (region == 0)] = k
    return out


def without_necks(mask, mark, radius, spacing):
    r"""The part of ``mask`` that ``mark`` reaches through passages at least ``2 radius`` wide.

    The opening of ``mask`` by a ball :math:`B_r` of radius :math:`r` = ``radius`` (the
    union of the balls of that radius inside it, :math:`(M \ominus B_r) \oplus B_r`) splits
    it at every neck narrower than the ball; its pieces that meet ``mark``, and the mark
    itself (a marked thin structure is evidence, not a neck), are the core :math:`C`, and
    the answer is :math:`M \cap (C \oplus B_{r + h})`, :math:`h` the largest
    voxel size: the core and a fringe (thin protrusions, the stub of a neck), so that a
    fringe always reaches the next slice of a volume whose slices are thicker than
    :math:`r`. A ``mask`` with no ball of radius :math:`r` inside, or whose opening misses
    ``mark``, is returned whole: there is nothing to tell a neck from the object by. Every
    length is physical (``spacing``), so the rule is scale-free.
    """
    fringe = radius + max(spacing)
    grow = [int(np.ceil(fringe / h)) + 2 for h in spacing]
    box = bounding_box(mask, grow)
    inner = distance_to(~mask[box], spacing) > radius
    if not inner.any():
        return mask
    opened = distance_to(inner, spacing) <= radius
    pieces, _ = ndimage.label(opened)
    met = np.unique(pieces[mark[box] & opened])
    met = met[met > 0]
    if not met.size:
        return mask
    core = np.isin(pieces, met) | mark[box]  # a thin structure that is marked is evidence, not a neck
    out = np.zeros_like(mask)
    out[box] = mask[box] & (distance_to(core, spacing) <= fringe)
    return out


def meeting(phases, marks, n_labels):
    """Per label, only the face-connected pieces that overlap its marks (in place)."""
    for k in range(1, n_labels + 1):
        mask = phases == k
        components, n = ndimage.label(mask)
        if n > 1 or not (mask & (marks == k)).any():
            touched = np.unique(components[(marks == k) & mask])
            phases[mask & ~np.isin(components, touched[touched > 0])] = 0
    return phases


def keep_touching(mask, seed):
    """The connected components of ``mask`` that overlap ``seed`` (full connectivity)."""
    labelled = ndimage.label(mask, structure=ndimage.generate_binary_structure(mask.ndim, mask.ndim))[0]
    keep = np.unique(labelled[seed & mask])
    return np.isin(labelled, keep[keep > 0])
