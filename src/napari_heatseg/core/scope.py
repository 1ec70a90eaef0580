"""Where an answer may lie: the three scopes and the user's fixed marks, for every method.

A :class:`Scope` is made once per run from the prepared input and the user's marks
(:func:`make_scope`) and is used by the heat method *and* by every baseline:

- ``"inside"``: the answer lies within the marked region (a box or lasso drawn around the
  object), widened to reach any seed drawn outside it. The heat method works on the region
  and a band around it (:func:`~.morphology.inside_domain`) and learns the background
  there.
- ``"object"``: one connected object per label, grown or shrunk from its mark, within a
  neighbourhood that holds background (:func:`~.morphology.object_domain`) and within a
  frontier that moves out only while what the label grows into still looks like the mark
  (:class:`~.reach.Reach`); each step cuts the necks narrower than the mark
  (:func:`~.morphology.without_necks`), keeps the pieces that touch the mark and fills the
  holes they enclose (:func:`~.morphology.as_objects`).
- ``"all"``: everything in the image that looks like the marked regions.

Marks (``seeds``: voxels fixed to a label; ``background``: voxels fixed to no label) are
the same mechanism for every scope and method: they are put in place after every step
(:meth:`Scope.finish`), so they hold in every state a method returns. The scopes'
geometry (regions of interest, connected solid objects) is in
:mod:`napari_heatseg.core.morphology`.

Differences between the heat method and the baselines that are deliberate:

- ``"object"``: the heat method keeps face-connected pieces and fills holes (its answers
  are smooth, so a diagonal contact is a leak), cuts necks and grows within a frontier
  (:mod:`.reach`); the baselines keep fully connected pieces and fill nothing (a
  pixel-wise classifier's object often touches itself diagonally) and have no frontier.
- ``"inside"``: the heat method learns the background from a band of half the region's
  depth (:func:`~.morphology.inside_domain`); the baselines from the region's box grown by
  one voxel and its rim (GrabCut's rectangle convention).
"""

import numpy as np
from scipy import ndimage

from .distance import distance_to
from .morphology import (
    as_objects,
    bounding_box,
    depth,
    inside_domain,
    meeting,
    object_domain,
)
from .reach import Reach

__all__ = ["Scope", "corrections", "make_scope"]

NECK = 0.5
"""``scope="object"``: passages narrower than twice this many mark depths are necks, cut at
every step (:func:`~.morphology.without_necks`). The mark's depth is the user's own scale
of the object (a ball of half its depth by the standard protocol), so a target joined to a
similar region by a thinner passage stays itself. Chosen leave-one-set-out
(benchmarks/results/leak.md): on the 2D blob sets 0.5 beats 1 (GrabCut photos mean IoU
0.545 vs 0.477, none 0.554; DSB nuclei 0.699 vs 0.703); held out, 0.5 still cuts every
phantom neck and keeps brain1 and the cells3d nuclei at least as good as without the cut,
while 1, chosen on the 3D sets, costs the photos 0.08."""


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
    frontiers : dict
        ``"object"``: each label's latest :class:`~.reach.Reach` (its frontier on the grid
        solved last), which the next finer grid continues from.
    extents : dict
        ``"object"``: each label's farthest reach from its mark, and the distances to the
        mark on a box around it, with the shape of the grid they lie on
        (:func:`~.morphology.object_domain`).
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
        self.frontiers = {}  # "object": each label's latest :class:`~.reach.Reach`, passed on to finer grids
        self.extents = {}  # "object": each label's farthest reach (set by :meth:`domain`)

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
        cropped.frontiers = self.frontiers  # shared: the coarse grids' scopes are crops of one scope
        cropped.extents = self.extents if box is Ellipsis else {
            label: (extent, *_within(near, distance, box)) for label, (extent, near, distance, _) in self.extents.items()}
        for name in ("seeds", "background", "marks", "region"):
            value = getattr(self, name)
            setattr(cropped, name, None if value is None else value[box])
        return cropped

    def domain(self, prepared, spacing, reach, min_std):
        """Where labels may go, for the heat method (None: everywhere); see
        :func:`~.morphology.object_domain` and :func:`~.morphology.inside_domain`. Lengths
        in ``spacing``'s units. ``"object"``: also records each label's apparent extent
        (:attr:`extents`), the outer limit of its frontier (:class:`~.reach.Reach`): the
        domain itself reaches twice as far, to see background."""
        if self.name == "object":
            found = {}
            domain = object_domain(prepared.image, prepared.valid, self.marks, self.n_labels, spacing, reach, min_std,
                                   found)
            self.extents = {label: (*near, self.marks.shape) for label, near in found.items()}
            return domain
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
            allowed = np.logical_and(diffused > 1e-4, level.domain, out=level.scratch(("reach", label), bool))
            return np.logical_and(allowed, self.reach(label, level).inside, out=allowed)
        return None

    def reach(self, label, level):
        """``"object"``: the :class:`~.reach.Reach` (frontier) of phase ``label`` on ``level``."""
        key = ("frontier", label)
        if key not in level.kept:
            extent, near, distance, grid = self.extents.get(label, (np.inf, None, None, None))
            known = None  # on a coarse grid the frontier measures its own distances
            if grid == level.start.shape:  # the domain's grid: its distances to the mark serve
                known = np.full(grid, np.inf)
                known[near] = distance
            level.kept[key] = self.frontiers[label] = Reach(self.marks == label, level.spacing, level.domain,
                                                            extent, self.frontiers.get(label), known)
        return level.kept[key]

    def finish(self, phases, previous, level):
        """The phases of one step made to obey the scope: ``"object"``'s connected, solid
        objects (:func:`~.morphology.as_objects`), an anchored ``"inside"``'s pieces that
        meet the mark (:func:`~.morphology.meeting`), then the marks (:meth:`fix`)."""
        if self.name == "object":
            phases = as_objects(phases, previous, self.marks, self.n_labels, level.spacing, NECK)
            for label in range(1, self.n_labels + 1):
                if self.reach(label, level).update(phases == label, level.image):
                    phases[(phases == label) & ~self.reach(label, level).inside] = 0
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


def _within(near, distance, box):
    """``(near, distance, shape)`` of a box ``near`` and the values on it, on the sub-grid ``box``."""
    starts = [max(n.start, b.start) for n, b in zip(near, box)]
    stops = [max(min(n.stop, b.stop), s) for n, b, s in zip(near, box, starts)]
    inner = tuple(slice(s - n.start, e - n.start) for s, e, n in zip(starts, stops, near))
    return (tuple(slice(s - b.start, e - b.start) for s, e, b in zip(starts, stops, box)), distance[inner],
            tuple(b.stop - b.start for b in box))


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
        to_agreement = distance_to(_without_specks(agrees, wrong), spacing)
        components, n = ndimage.label(wrong)
        for box, index in zip(ndimage.find_objects(components), range(1, n + 1)):
            piece = components[box] == index
            half_width = float(to_agreement[box][piece].max())
            reach = max(spread * half_width + 2.0 * depth(piece, spacing), floor)
            grown = tuple(slice(max(b.start - m, 0), min(b.stop + m, size))
                          for b, m, size in zip(box, [int(np.ceil(reach / h)) + 1 for h in spacing], shape))
            mark = np.zeros([g.stop - g.start for g in grown], dtype=bool)
            mark[tuple(slice(b.start - g.start, b.stop - g.start) for b, g in zip(box, grown))] = piece
            distance = distance_to(mark, spacing)
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
