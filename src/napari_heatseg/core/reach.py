r"""How far a ``scope="object"`` label may grow: a frontier that moves out only while the evidence holds.

A fixed reach cannot serve every object: a ball drawn at the deepest point of a round
object says the object ends about one mark depth :math:`d` beyond the mark, while an
elongated tumour marked near one end extends many depths along the stack. So each label
starts with a frontier :math:`\rho_0 = ` :data:`START` :math:`\cdot d` (distance to its
mark, physical units; :math:`d` is measured in the plane of a mark drawn on one slice,
:func:`mark_depth`), and the threshold dynamics may only place the label within it.
Whenever the label reaches its frontier (it wants to grow beyond: the image fit pulls it
on), the frontier moves out by :data:`STEP` :math:`\cdot d` if the part it grew since the
last move still looks like the mark: its median has not drifted from the mark's mean by
more than :data:`~.evidence.MAX_DRIFT` times the contrast between the mark and its
background (the domain outside the label when the frontier is first reached), the mark's
own spread added in quadrature (:meth:`Reach._mark_reference`, :func:`~.evidence.verdict`).
Otherwise the frontier falls back to where the evidence last held and stays there: the
shell that turned into another structure (a brighter neighbour) is dropped. The median,
not the mean, judges a shell: one that is half another structure is judged by it. A label
pressing on its frontier is not yet at its boundary, so the contrast with a ring around it
says nothing there; the drift does.

The outer limit is the label's apparent extent: ``reach`` mark depths, or farther where
half the voxels around the mark still look like it (a small mark deep inside a large
uniform object); the domain around the mark (:func:`~.morphology.object_domain`), where
the background model is learned, reaches twice as far. Necks are cut at every step
(:func:`~.morphology.without_necks`). Every length is a multiple of the mark's depth and
the test a ratio of intensity differences, so the rule is free of the spacing's unit and
of the intensity range.
"""

import numpy as np

from .distance import distance_to
from .evidence import contrast, verdict
from .morphology import depth

__all__ = ["START", "STEP", "Reach", "mark_depth"]

START = 2.0
"""The first frontier, in mark depths beyond the mark: a round object marked by the standard
ball ends about one depth beyond it, and one more is the fit's margin (half the leak bound
of two depths beyond the object). Chosen on the leak phantoms; see benchmarks/results/leak.md."""

STEP = 0.5
"""How far the frontier moves out at a time, in mark depths."""


def mark_depth(mark, spacing):
    """The scale a mark gives: its :func:`~.morphology.depth`, measured in the plane of its
    slice when it is drawn on a single slice of a volume (a disk on one slice says how wide
    the object is, not that it is one slice thick)."""
    flat = [a for a in range(mark.ndim) if mark.ndim == 3 and np.ptp(np.flatnonzero(mark.any(
        axis=tuple(b for b in range(mark.ndim) if b != a)))) == 0 and mark.shape[a] > 1]
    if not flat:
        return depth(mark, spacing)
    axis = flat[0]
    plane = np.take(mark, np.flatnonzero(mark.any(axis=tuple(b for b in range(3) if b != axis)))[0], axis=axis)
    return depth(plane, [h for b, h in enumerate(spacing) if b != axis])


class Reach:
    """The frontier of one label on one grid (see the module's description).

    Parameters
    ----------
    mark : ndarray of bool
        The label's mark on this grid.
    spacing : tuple of float
        The grid's voxel size.
    limit : ndarray of bool, optional
        Where the label may go at all (the scope's domain); the background the mark is
        compared with is measured there (with none, the frontier moves without a test).
    farthest : float
        The frontier never moves beyond this distance to the mark (the label's apparent
        extent, :func:`~.morphology.object_domain`).
    coarser : Reach, optional
        The same label's frontier on the coarser grid solved before this one: its frontier
        (in mark depths), reference and verdict carry over, so a finer grid neither
        forgets a stop nor takes a coarse answer that leaked as its reference.
    distance : ndarray of float, optional
        The distance to the mark on this grid, if known (exact up to ``farthest``; inf
        beyond): computed here otherwise.

    Attributes
    ----------
    radius : float
        The current frontier (distance to the mark).
    stopped : str or None
        ``"drifted"`` once the frontier stopped moving (it fell back to where the evidence last
        held), None while it may move.
    """

    def __init__(self, mark, spacing, limit=None, farthest=np.inf, coarser=None, distance=None):
        self.spacing = tuple(spacing)
        self.depth = max(mark_depth(mark, spacing), min(spacing)) if mark.any() else min(spacing)
        if distance is None:
            distance = distance_to(mark, spacing) if mark.any() else np.zeros(mark.shape)
        self.distance = distance
        self.limit = limit
        if coarser is None:
            self.radius, self._held, self._reference, self.stopped = START * self.depth, 0.0, None, None
        else:
            scale = self.depth / coarser.depth
            self.radius, self._held = coarser.radius * scale, coarser._held * scale
            self._reference, self.stopped = coarser._reference, coarser.stopped
        self._inside = self.distance <= self.radius
        reachable = np.isfinite(self.distance) if limit is None else limit & np.isfinite(self.distance)
        top = float(self.distance[reachable].max()) if reachable.any() else 0.0
        self._top = min(top, farthest)

    @property
    def inside(self):
        """Where the label may be now: within the frontier."""
        return self._inside

    def update(self, mask, image):
        """Move the frontier after a step that left the label at ``mask`` (``image``: the
        grid's image, channels last); returns True when the frontier changed."""
        if self.stopped is not None or self.radius >= self._top:
            return False
        if not (mask & (self.distance > self.radius - max(self.spacing))).any():
            return False  # the label does not press against its frontier
        if self._reference is None:  # the mark's look, and its contrast with the background around
            self._reference = self._mark_reference(image, mask)
        else:
            grown = mask & (self.distance > self._held)
            why = verdict((np.nanmedian(image[grown], axis=0), None), self._reference, -np.inf) \
                if grown.any() else None
            if why is not None:
                self.stopped = why
                self._set(self._held)
                return True
        self._held = self.radius
        self._set(self.radius + STEP * self.depth)
        return True

    def _mark_reference(self, image, mask):
        r"""``(m, c)``: the mark's mean :math:`m` and its contrast with the background the
        label competes with (the domain outside it), lengthened to
        :math:`\sqrt{\|c\|^2 + \operatorname{tr}\Sigma}` by the mark's own variance
        :math:`\Sigma`: a textured or many-coloured mark allows its shells as much drift as
        it varies itself."""
        mark = self.distance == 0
        background = ~mask if self.limit is None else self.limit & ~mask
        reference = contrast(image, mark, background)
        if reference is None:
            return None
        mean, towards = reference
        size2 = float(np.dot(towards, towards))
        if not size2 > 0:
            return reference
        spread2 = float(np.sum(np.nanvar(image[mark], axis=0)))
        return mean, towards * np.sqrt(1 + spread2 / size2)

    def _set(self, radius):
        self.radius = radius
        self._inside = self.distance <= radius
