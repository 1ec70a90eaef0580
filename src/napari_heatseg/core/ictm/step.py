r"""One step of threshold dynamics: refit the region models, diffuse, decide, apply the scope.

With ``d_k = K u_k`` for the label phases (``K`` the level's heat operator, which keeps
constants, ``K 1 = 1``) and ``d_0 = 1 - sum_k d_k``, a voxel compares

.. math::

    \psi_k = \phi_k - \phi_0 = \lambda (D_k - D_0) - s\,(d_k - d_0), \qquad s = \sqrt{\pi/\tau},

with 0 and joins the label phase with the most negative :math:`\psi_k` (phase 0 if none is
negative): only the label phases are diffused. The energy of the state,

.. math::

    E = \lambda \sum_k \langle u_k, D_k \rangle + \tfrac{s}{2} \sum_k \langle u_k, 1 - d_k \rangle,

takes the data term from the phases' moments for quadratic models (no pass over the image).

Two decisions exist and give the same phases bit for bit: the compiled two-phase loop of
:mod:`.kernels` (two grey quadratic phases) and the numpy one for everything
else; :func:`choose_decision` picks one per level.
"""

import numpy as np

from ..models import cost_differences, grey_difference, make_model
from .kernels import two_phase_decision, two_phase_sums

__all__ = ["DECISIONS", "Problem", "choose_decision", "decide", "interaction_energy", "iterate", "label_masks"]

DECISIONS = ("auto", "compiled", "numpy")


class Problem:
    """The region models and the fidelity weight of one run (shared by every level)."""

    def __init__(self, n_labels, n_channels, params):
        self.n_phases = n_labels + 1
        self.lam = np.float32(params.lam)
        self.models = [make_model(params.model, n_channels, **params.model_options) for _ in range(self.n_phases)]

    def fit(self, level, phases, label_masks):
        """Refit every phase's model on its valid pixels. Returns the models' costs (None for
        models fitted from moments, whose data energy follows from the moments) and the data
        energy ``lam sum_k <u_k, D_k>``."""
        if self.models[0].from_moments:
            return None, self.fit_moments(level.moments(phases, self.n_phases))
        masks = [np.logical_not(np.logical_or.reduce(label_masks)), *label_masks]
        for model, mask in zip(self.models, masks):
            model.fit(level.image[mask & level.valid])
        costs = [model.cost(level.image) for model in self.models]
        if level.invalid is not None:
            for cost in costs:
                cost[level.invalid] = 0.0  # non-finite pixels carry no data term
        return costs, float(self.lam) * sum(level.inner(c, m) for c, m in zip(costs, masks))

    def fit_moments(self, stats):
        """Refit every phase's model from its moments ``(count, sum, outer)`` (one entry per
        phase, as :func:`~napari_heatseg.core.models.phase_moments` gives them); returns the
        data energy ``lam sum_k <u_k, D_k>``."""
        for k, model in enumerate(self.models):
            model.fit_moments(*(s[k] for s in stats))
        return float(self.lam) * sum(m.total_cost(*(s[k] for s in stats)) for k, m in enumerate(self.models))

    def two_phase_coefficients(self):
        """``(A, B, C)`` of ``lam (D_1 - D_0)`` for the compiled decision, or None while it
        is not such a quadratic (see :func:`~napari_heatseg.core.models.grey_difference`)."""
        return grey_difference(self.models[1], self.models[0], self.lam)

    def differences(self, level, costs):
        """``lam (D_k - D_0)`` for the label phases ``k >= 1`` and the relative cost of phase 0
        (0, or inf if it was never fitted; see :func:`~napari_heatseg.core.models.cost_differences`)."""
        outs = [level.scratch(("cost", k)) for k in range(1, self.n_phases)]
        differences, baseline = cost_differences(self.models, level.image, self.lam, outs, costs)
        if level.invalid is not None:
            for difference in differences:
                difference[level.invalid] = 0.0
        return differences, baseline


def choose_decision(level, problem, decision="auto"):
    """``"compiled"`` where the compiled two-phase loop applies (two grey phases with
    quadratic models), else ``"numpy"``; ``decision`` forces one (the
    compiled loop is refused where it does not apply)."""
    if decision not in DECISIONS:
        raise ValueError(f"unknown decision {decision!r}; choose one of {', '.join(DECISIONS)}.")
    applies = (problem.n_phases == 2 and problem.models[0].from_moments
               and level.image.shape[-1] == 1)
    if decision == "compiled" and not applies:
        raise ValueError("the compiled decision needs two grey phases with a quadratic model.")
    return "compiled" if applies and decision != "numpy" else "numpy"


def _lowest(psi, allowed, baseline, dtype):
    """Per voxel, the label phase ``k`` with the smallest ``psi_k`` among those allowed there,
    or 0 where none is below ``baseline`` (phase 0's own; ties: lowest), as ``dtype``."""
    better = np.empty(psi[0].shape, dtype=bool)
    best = baseline
    out = None
    for k, (candidate, where) in enumerate(zip(psi, allowed), start=1):
        np.less(candidate, best, out=better)
        if where is not None:
            better &= where
        if out is None:
            out = better.astype(dtype)
        else:
            np.copyto(out, k, where=better)
        if k < len(psi):
            best = np.where(better, candidate, best)
    return out


def label_masks(level, phases, n_labels):
    """The indicator of each label phase, as boolean masks (a 0/1 map is its own)."""
    if n_labels == 1 and phases.dtype == np.uint8:
        return [phases.view(bool)]
    return [np.equal(phases, k, out=level.scratch(("mask", k), bool)) for k in range(1, n_labels + 1)]


def interaction_energy(level, phases, masks, diffused):
    """The boundary term ``s/2 (<1, 1> - kept)`` of the state, with ``kept = sum_k <u_k,
    d_k>`` over every phase (phase 0 through ``d_0 = 1 - sum_k d_k``). A sum over voxels,
    so the chunked backend adds it up over blocks. Two phases sum in one compiled pass,
    whichever decision the level uses."""
    if len(diffused) == 1:
        own, labelled_sum = two_phase_sums(diffused[0], phases)
        own = cross = [own]
    else:
        labelled = sum(diffused)  # sum_k d_k over the label phases
        own = [level.inner(d, m) for d, m in zip(diffused, masks)]
        cross = [level.inner(labelled, m) for m in masks]
        labelled_sum = float(np.sum(labelled, dtype=np.float64))
    # <u_0, d_0> = <u_0, 1> - <1, labelled> + sum_{k>0} <u_k, labelled>
    size = phases.size
    background = size - sum(np.count_nonzero(m) for m in masks)
    kept = sum(own) + background - labelled_sum + sum(cross)
    return 0.5 * float(level.scale) * (size - kept)


def decide(level, problem, costs, diffused, allowed, coefficients, dtype):
    """The phases minimising ``psi`` voxel by voxel: through the compiled loop when
    ``coefficients`` (of a compiled level) are given, else through numpy."""
    if coefficients is not None:  # one compiled pass (the same arithmetic as numpy's)
        return two_phase_decision(level.image[..., 0], None if level.invalid is None else level.valid,
                                  diffused[0], allowed[0], coefficients, level.scale, dtype)
    return _decide_numpy(level, problem, costs, diffused, allowed, dtype)


def _decide_numpy(level, problem, costs, diffused, allowed, dtype):
    """Phases minimising ``psi`` through numpy (any number of phases, every model)."""
    differences, baseline = problem.differences(level, costs)
    scale, pull = level.scale, level.scratch("pull")
    if len(diffused) == 1:  # d_1 - d_0 = 2 d_1 - 1
        np.multiply(diffused[0], 2 * scale, out=pull)
        differences[0] -= pull
        differences[0] += scale
    else:
        rest = np.subtract(np.float32(1.0), sum(diffused), out=level.scratch("rest"))
        for difference, d in zip(differences, diffused):
            np.subtract(d, rest, out=pull)
            pull *= scale
            difference -= pull
    return _lowest(differences, allowed, baseline, dtype)


def iterate(level, problem, phases, max_num_iter, tol, decision="auto"):
    """Run threshold dynamics on one level; yields ``(iteration, phases, energy)``.

    A state whose energy would exceed the last one's (rounding, a mixture model's
    subsampling, the connectivity of ``scope="object"``) ends the iteration instead, so the
    yielded energies never increase.
    """
    n_labels = problem.n_phases - 1
    compiled = choose_decision(level, problem, decision) == "compiled"
    scope = level.scope
    energy = np.inf
    for iteration in range(max_num_iter + 1):
        masks = label_masks(level, phases, n_labels)
        costs, data_energy = problem.fit(level, phases, masks)
        diffused = [level.diffuse(m, out=level.scratch(("diffused", k))) for k, m in enumerate(masks, start=1)]
        new_energy = data_energy + interaction_energy(level, phases, masks, diffused)
        if new_energy > energy:  # rounding or a non-exact refit: stop at the last good state
            return
        energy = new_energy
        yield iteration, phases, energy
        if iteration == max_num_iter:
            return
        allowed = [scope.allowed(k, d, level) for k, d in enumerate(diffused, start=1)]
        coefficients = problem.two_phase_coefficients() if compiled else None  # None: a phase never fitted
        new_phases = scope.finish(decide(level, problem, costs, diffused, allowed, coefficients, phases.dtype),
                                  phases, level)
        moved = np.flatnonzero(new_phases != phases)
        if moved.size <= tol * phases.size:
            return
        level.move(moved, phases, new_phases, problem.n_phases)
        phases = new_phases
