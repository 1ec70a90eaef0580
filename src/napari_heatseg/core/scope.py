"""Where an answer may lie: the three scopes and the user's fixed marks, for every method.

A :class:`Scope` is made once per run from the prepared input and the user's marks
(:func:`make_scope`) and is used by the heat method *and* by every baseline:

- ``"inside"``: the answer lies within the marked region (a box or lasso drawn around the
  object), widened to reach any seed drawn outside it. The heat method works on the region
  and a band around it (:func:`inside_domain`) and learns the background there.
- ``"object"``: one connected object per label, grown or shrunk from its mark, within a
  neighbourhood that holds background (:func:`object_domain`); each step keeps the pieces
  that touch the mark and fills the holes they enclose (:func:`as_objects`).
- ``"all"``: everything in the image that looks like the marked regions.

Marks (``seeds``: voxels fixed to a label; ``background``: voxels fixed to no label) are
the same mechanism for every scope and method: they are put in place after every step
(:meth:`Scope.finish`), so they hold in every state a method returns.

Differences between the heat method and the baselines that are deliberate:

- ``"object"``: the heat method keeps face-connected pieces and fills holes (its answers
  are smooth, so a diagonal contact is a leak); the baselines keep fully connected pieces
  and fill nothing (a pixel-wise classifier's object often touches itself diagonally).
- ``"inside"``: the heat method learns the background from a band of half the region's
  depth (:func:`inside_domain`); the baselines from the region's box grown by one voxel and
  its rim (GrabCut's rectangle convention).
"""

import numpy as np
from scipy import ndimage

__all__ = ["Scope", "as_objects", "bounding_box", "fill_holes", "keep_touching", "make_scope", "meeting"]


def bounding_box(mask, margin):
    """Slices of the bounding box of ``mask``, grown by ``margin`` voxels per axis."""
    box = ndimage.find_objects(mask.astype(np.int8))[0]
    return tuple(slice(max(b.start - m, 0), min(b.stop + m, n)) for b, m, n in zip(box, margin, mask.shape))


def depth(mark, spacing):
    """Largest distance from a voxel of ``mark`` to the nearest unmarked voxel (the radius of
    a drawn ball), computed on the mark's bounding box grown by one voxel."""
    box = bounding_box(mark, [1] * mark.ndim)
    return ndimage.distance_transform_edt(mark[box], sampling=spacing).max()


class Scope:
    """The constraints of one run: region of interest, allowed voxels, per-step finish.

    Attributes
    ----------
    name : {'inside', 'object', 'all'}
    region : (...) ndarray of int or None
        ``"inside"``: the phases of the region each label must stay within (the start,
        widened to reach the label's seeds); None otherwise.
    seeds : (...) ndarray of int or None
        Phase indices fixed for the whole run (0 = free).
    background : (...) ndarray of bool or None
        Voxels fixed to the background.
    anchored : bool
        ``"inside"`` from a mark on one slice of a volume (:mod:`..seeding`): ``start`` is
        the region the mark seeds, ``marks`` the mark as drawn, and every step keeps only
        the pieces that meet it.
    """

    def __init__(self, name, n_labels, start, seeds=None, background=None, anchor=None):
        self.name = name
        self.n_labels = n_labels
        self.seeds = seeds if seeds is not None and seeds.any() else None
        self.background = background if background is not None and background.any() else None
        drawn = start if anchor is None else anchor
        self.marks = drawn if self.seeds is None else np.where(drawn > 0, drawn, self.seeds)
        self.region = self._inside_region(start) if name == "inside" else None
        self.anchored = anchor is not None

    def _inside_region(self, start):
        """Each label's region: the start's, plus the bounding box of it and its seeds when a
        seed lies outside (the box was drawn too small), less the background marks."""
        region = start.copy()
        if self.seeds is not None:
            for k in range(1, self.n_labels + 1):
                outside = (self.seeds == k) & (region != k)
                if outside.any():
                    box = bounding_box(self.marks == k, [0] * region.ndim)
                    region[box][region[box] == 0] = k
        if self.background is not None:
            region[self.background] = 0
        return region

    def crop(self, box):
        """The same scope on the sub-grid ``box``."""
        cropped = Scope.__new__(Scope)
        cropped.name, cropped.n_labels, cropped.anchored = self.name, self.n_labels, self.anchored
        for name in ("seeds", "background", "marks", "region"):
            value = getattr(self, name)
            setattr(cropped, name, None if value is None else value[box])
        return cropped

    def domain(self, prepared, spacing, reach, min_std):
        """Where labels may go, for the heat method (None: everywhere); see
        :func:`object_domain` and :func:`inside_domain`. Lengths in ``spacing``'s units."""
        if self.name == "object":
            return object_domain(prepared.image, prepared.valid, self.marks, self.n_labels, spacing, reach, min_std)
        if self.name == "inside":
            return inside_domain(self.region, spacing)
        return None

    def allowed(self, label, diffused, level):
        """Where phase ``label`` may be after the next step of the heat method on ``level``
        (None: anywhere): within its region (``"inside"``), within reach of its diffused
        indicator and the domain (``"object"``: no jumps)."""
        if self.name == "inside":
            key = ("region", label)
            if key not in level.kept:
                level.kept[key] = self.region == label
            return level.kept[key]
        if self.name == "object":
            return np.logical_and(diffused > 1e-4, level.domain, out=level.scratch(("reach", label), bool))
        return None

    def finish(self, phases, previous, level):
        """The phases of one step made to obey the scope: ``"object"``'s connected, solid
        objects (:func:`as_objects`), an anchored ``"inside"``'s pieces that meet the mark
        (:func:`meeting`), then the marks (:meth:`fix`)."""
        if self.name == "object":
            phases = as_objects(phases, previous, self.marks, self.n_labels, level.spacing)
        elif self.anchored:
            phases = meeting(phases, self.marks, self.n_labels)
        return self.fix(phases)

    def fix(self, phases):
        """Put the marks in place in ``phases`` (in place); returns ``phases``."""
        if self.seeds is not None:
            np.copyto(phases, self.seeds, where=self.seeds > 0, casting="unsafe")
        if self.background is not None:
            phases[self.background] = 0
        return phases


def make_scope(prepared, seeds=None, background=None, initial=None, anchor=None):
    """The :class:`Scope` of ``prepared.scope`` with the user's marks (phase indices);
    ``anchor``: the mark as drawn when ``prepared.phases`` is the region it seeds (:mod:`..seeding`).

    With ``initial`` (the result being corrected), a correction is local and decisive
    (:func:`corrections`): voxels far from every new piece of evidence keep their
    ``initial`` phase, and the core of the wrong region around each mark takes the mark's
    phase, both as fixed marks of the same mechanism.
    """
    if initial is not None:
        found = corrections(initial, seeds, background, prepared.spacing)
        if found is not None:  # the user's own marks win over what is inferred from them
            near_label, near_background, label_cores, background_core = found
            # near a positive mark the result may only grow, near a negative one only shrink
            keep = ~near_background & (initial > 0) | ~near_label & (initial == 0)
            inferred = np.where(keep, initial, 0)
            for k, core in label_cores:
                inferred[core] = k
            inferred_background = (keep & (initial == 0)) | background_core
            if background is not None:
                inferred[background] = 0
            if seeds is not None:
                inferred = np.where(seeds > 0, seeds, inferred)
            inferred_background &= inferred == 0
            seeds = inferred
            background = inferred_background if background is None else background | inferred_background
    return Scope(prepared.scope, prepared.n_labels, prepared.phases, seeds, background, anchor)


def corrections(initial, seeds, background, spacing, spread=3.0, core=0.5):
    """What the marks that contradict ``initial`` say: where it may change, and which voxels
    around each mark are surely wrong.

    Each connected piece of new evidence (seeds of label ``k`` where ``initial`` is not
    ``k``; background marks where it is labelled) says that a region around it is wrong. The
    click of the standard protocol sits where the error is deepest, so the piece's distance
    ``d`` to the nearest voxel where ``initial`` already agrees with it measures the error's
    half-width. The voxels within ``core * d`` of the piece (all of them disagreeing with
    ``initial``) take the mark's phase; the correction may reach ``spread * d`` plus twice
    the mark's own depth (at least 8 voxels of the finest spacing) from the piece, and
    nothing farther changes. Near a seed the result may only grow, near a background mark
    only shrink (:func:`make_scope`): a click never makes the error it was given for worse
    elsewhere in its reach. Every length is a distance in the image, so the rule is
    scale-free. ``spread`` and ``core`` were chosen on the GrabCut photos' click protocol
    (``benchmarks/noc.py``: 3 and 0.5 against 6 and 0.9; the NoC barely moves).

    Returns
    -------
    (near_label, near_background, label_cores, background_core) or None
        ``near_label`` / ``near_background``: within reach of a seed / a background mark;
        ``label_cores``: ``(k, mask)`` pairs of voxels fixed to label ``k``;
        ``background_core``: voxels fixed to the background. None when no mark contradicts
        ``initial`` (a plain warm start, free to evolve everywhere).
    """
    shape = initial.shape
    pieces = []
    if seeds is not None:
        for k in np.unique(seeds[seeds > 0]):
            wrong = (seeds == k) & (initial != k)
            if wrong.any():
                pieces.append((int(k), wrong, initial == k))
    if background is not None:
        wrong = background & (initial > 0)
        if wrong.any():
            pieces.append((0, wrong, initial == 0))
    if not pieces:
        return None
    near = {True: np.zeros(shape, dtype=bool), False: np.zeros(shape, dtype=bool)}  # by the mark's sign
    label_cores, background_core = [], np.zeros(shape, dtype=bool)
    floor = 8.0 * min(spacing)
    for k, wrong, agrees in pieces:
        if not agrees.any():  # nothing agrees anywhere: the whole result may change
            near[k > 0][...] = True
            continue
        to_agreement = ndimage.distance_transform_edt(~_without_specks(agrees, wrong), sampling=spacing)
        components, n = ndimage.label(wrong)
        for box, index in zip(ndimage.find_objects(components), range(1, n + 1)):
            piece = components[box] == index
            half_width = float(to_agreement[box][piece].max())
            reach = max(spread * half_width + 2.0 * depth(piece, spacing), floor)
            grown = tuple(slice(max(b.start - m, 0), min(b.stop + m, size))
                          for b, m, size in zip(box, [int(np.ceil(reach / h)) + 1 for h in spacing], shape))
            mark = np.zeros([g.stop - g.start for g in grown], dtype=bool)
            mark[tuple(slice(b.start - g.start, b.stop - g.start) for b, g in zip(box, grown))] = piece
            distance = ndimage.distance_transform_edt(~mark, sampling=spacing)
            near[k > 0][grown] |= distance <= reach
            sure = (distance <= core * half_width) & ~agrees[grown]
            if k:
                label_cores.append((k, _embed(sure, grown, shape)))
            else:
                background_core[grown] |= sure
    return near[True], near[False], label_cores, background_core


def _without_specks(agrees, wrong):
    """``agrees`` without its pieces smaller than the marks: a speckled result's small holes
    (or islands) are not where it agrees with a mark, and would shrink the error's measured
    half-width to the distance of the nearest speck."""
    pieces, n = ndimage.label(agrees)
    if n <= 1:
        return agrees
    sizes = np.bincount(pieces.ravel())
    large = sizes >= np.count_nonzero(wrong)
    large[0] = False
    return large[pieces] if large.any() else agrees


def _embed(mask, box, shape):
    out = np.zeros(shape, dtype=bool)
    out[box] = mask
    return out


# ------------------------------------------------------------------------- regions of interest

def object_domain(image, valid, start, n_labels, spacing, reach, min_std):
    """Region of interest of ``scope="object"``: a neighbourhood of each mark holding background.

    Its radius (beyond the mark) is the larger of ``reach`` mark depths (the depth is the
    largest inner distance: the radius of a drawn ball) and twice the distance within which
    half of the pixels do not look like the mark (farther than 2 standard deviations, floored
    at ``min_std``, from its mean). Outside, nothing can be labelled and no data is read, so a
    label cannot leak into far, similar tissue and the background model stays local; yet a
    small mark deep inside a large object still sees the object's surroundings.

    The distances are computed on a box around the mark that holds every voxel within the
    radius (:func:`_near_mark`), not on the whole image; the result is the same.
    """
    domain = np.zeros(start.shape, dtype=bool)
    for k in range(1, n_labels + 1):
        mark = start == k
        samples = image[mark & valid]
        margin = reach * max(depth(mark, spacing), 1.0)
        if not len(samples):
            box, distance, _ = _near_mark(mark, spacing, margin)
            domain[box] |= distance <= margin
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
    return domain


def _near_mark(mark, spacing, radius):
    """The distance to ``mark`` on a box around it that holds every voxel within ``radius``.

    Every mark voxel lies in the box, so the distances in it are those of the whole grid; a
    voxel outside is more than ``ceil(radius / h) + 1`` voxels of size ``h`` away along
    some axis, so farther than ``radius``. Returns ``(box, distance, whole)``, ``whole``
    telling whether the box is the whole grid.
    """
    grow = [int(np.ceil(radius / h)) + 1 if np.isfinite(radius / h) else n for h, n in zip(spacing, mark.shape)]
    box = bounding_box(mark, grow)
    whole = all(b.start == 0 and b.stop == n for b, n in zip(box, mark.shape))
    return box, ndimage.distance_transform_edt(~mark[box], sampling=spacing), whole


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
    return ndimage.distance_transform_edt(~marked, sampling=spacing) <= band * max(depth(marked, spacing), 1.0)


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


def as_objects(phases, previous, seeds, n_labels, spacing):
    """Per label, keep the components touching its seed (or, failing that, the largest),
    and fill the holes they enclose: ``scope="object"`` answers solid, connected objects.
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
