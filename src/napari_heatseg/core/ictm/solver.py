r"""Threshold dynamics with the heat semigroup (the iterative convolution-thresholding method).

Each label of the start is a phase with indicator :math:`u_i` (the background is phase 0).
The segmentation minimises

.. math::

    E(u) = \lambda \sum_i \int u_i D_i(f) + \sqrt{\pi / \tau} \sum_{i<j} \int u_i\, K u_j,

where :math:`K` is the heat semigroup at time :math:`\tau` with reflecting borders: the
Gaussian :math:`G_\tau` (``edge=0``) or :math:`\exp(-\tau L_w)` for the contrast-weighted
graph Laplacian of the image (:mod:`..edge_heat`), which diffuses less across image edges,
so that a boundary there costs less (GrabCut's contrast-sensitive pairwise term, [3]_).
:math:`D_i` is the region model of phase :math:`i` (:mod:`..models`). The second term tends
to the (contrast-weighted) boundary length as :math:`\tau \to 0`. One iteration refits the
models, computes

.. math::

    \phi_i = \lambda D_i - \sqrt{\pi/\tau}\,K u_i

and moves every pixel to the phase with the smallest :math:`\phi_i` (:mod:`.step`).
:math:`K` is symmetric positive semi-definite, so the interaction term is concave and this
linearise-and-minimise step never increases :math:`E`; fixing the user's marks keeps it so
(the step minimises voxel by voxel). A step that would increase it (rounding, a mixture
model's subsampling, the connectivity of ``scope="object"``) ends the iteration instead, so
the reported energy is non-increasing by construction.

References
----------
.. [1] D. Wang, H. Li, X. Wei, X.-P. Wang, "An efficient iterative thresholding method for
       image segmentation", J. Comput. Phys. 350 (2017). :DOI:`10.1016/j.jcp.2017.08.020`
.. [2] S. Esedoglu, F. Otto, "Threshold dynamics for networks with arbitrary surface
       tensions", Comm. Pure Appl. Math. 68 (2015). :DOI:`10.1002/cpa.21527`
.. [3] C. Rother, V. Kolmogorov, A. Blake, "GrabCut: interactive foreground extraction using
       iterated graph cuts", ACM Trans. Graphics 23(3) (2004).
"""

from dataclasses import replace

import numpy as np

from ..morphology import bounding_box
from ..scope import make_scope
from .levels import Level, coarse_levels, resample, stages
from .params import HeatParameters
from .step import DECISIONS, Problem, iterate

__all__ = ["threshold_dynamics"]


def threshold_dynamics(prepared, scope=None, *, iter_callback=None, decision="auto", initial=None, **params):
    r"""Threshold dynamics on prepared input; a generator of (iteration, phases, energy).

    Parameters
    ----------
    prepared : Prepared
        From :func:`napari_heatseg.core.inputs.prepare`.
    scope : :class:`~napari_heatseg.core.scope.Scope`, optional
        The run's scope and marks (default: ``prepared.scope`` without marks).
    iter_callback : callable, optional
        Called as ``iter_callback(iteration, phases, energy)`` for every state.
    decision : {'auto', 'compiled', 'numpy'}
        Which implementation of the threshold step to use (for tests; both give the same
        phases): see :func:`~napari_heatseg.core.ictm.step.choose_decision`.
    initial : ndarray of int, optional
        Phases to evolve from instead of the start (a warm start from the current result:
        the coarse stages are skipped).
    **params
        The fields of :class:`~napari_heatseg.core.ictm.params.HeatParameters`.

    Returns
    -------
    generator of (iteration, phases, energy)
        Full-resolution states; ``energy`` never increases. Parameters are checked
        before the generator is returned.
    """
    resolved = HeatParameters.from_keywords(**params).resolve(prepared)
    if iter_callback is not None and not callable(iter_callback):
        raise TypeError(f"`iter_callback` must be callable (or None), got {iter_callback!r}.")
    if decision not in DECISIONS:
        raise ValueError(f"unknown decision {decision!r}; choose one of {', '.join(DECISIONS)}.")
    scope = make_scope(prepared) if scope is None else scope
    return _run(prepared, scope, resolved, iter_callback, decision, initial)


def _run(prepared, scope, params, iter_callback, decision, initial):
    """The iteration itself (a generator); see :func:`threshold_dynamics`.

    With a region of interest (``scope="inside"`` or ``"object"``) the work is done on its
    bounding box grown by 3 sigma of the coarsest stage: outside the region every voxel stays
    background, so the heat kernel sees the same surroundings, and the cost follows the
    region, not the image. Lengths are measured in finest voxels from here on, so ``lam``
    is unit-free.
    """
    finest = min(prepared.spacing)
    spacing = tuple(h / finest for h in prepared.spacing)
    tau = params.tau / finest**2
    problem = Problem(prepared.n_labels, prepared.image.shape[-1], params)
    if prepared.n_labels < 256:  # phase maps of one byte: a quarter of the memory traffic
        prepared = replace(prepared, phases=prepared.phases.astype(np.uint8, copy=False))
    phases = scope.fix(prepared.phases.copy() if initial is None else initial.astype(prepared.phases.dtype))
    shape, crop = phases.shape, None
    domain = scope.domain(prepared, spacing, params.reach, params.min_std)
    if domain is not None:
        domain |= phases > 0  # the marks and a result being corrected stay reachable
        sigma = 4 * np.sqrt(2 * tau)  # on the coarsest grid
        crop = bounding_box(domain, [int(np.ceil(3 * sigma / h)) + 1 for h in spacing])
        prepared = replace(prepared, image=prepared.image[crop], valid=prepared.valid[crop],
                           phases=prepared.phases[crop])
        domain, scope, phases = domain[crop], scope.crop(crop), phases[crop]
    # a warm start and a run of no iterations keep their state as it is (no coarse round trip)
    coarse_to_fine = params.coarse_to_fine and initial is None and params.max_num_iter > 0
    states = _solve(prepared, scope, domain, problem, phases, spacing, tau, params, coarse_to_fine, decision)
    for iteration, state, energy in states:
        if crop is not None:
            state, cropped = np.zeros(shape, dtype=state.dtype), state
            state[crop] = cropped
        if iter_callback is not None:
            iter_callback(iteration, state, energy)
        yield iteration, state, energy


def _has_every_label(phases, n_labels):
    return all((phases == k).any() for k in range(1, n_labels + 1))


def _solve(prepared, scope, domain, problem, phases, spacing, tau, params, coarse_to_fine, decision):
    """Coarse-to-fine threshold dynamics from ``phases`` (lengths in finest voxels); yields
    full-resolution states."""
    plan = stages(phases.shape, spacing, tau) if coarse_to_fine else []
    levels = coarse_levels(prepared, scope, domain, spacing, tau, params.edge,
                           [factors for factors, _ in plan], [stage_tau for _, stage_tau in plan])
    result = None
    while levels:  # each coarse grid is let go once done (a volume's coarse grids add up)
        coarse = levels.pop(0)
        # the coarser stage's answer, unless it lost a label: then restart from the mark
        result = coarse.start if result is None else resample(result, coarse.start.shape, order=0)
        if not _has_every_label(result, prepared.n_labels):
            result = coarse.start
        for _, result, _ in iterate(coarse, problem, _with_marks(coarse, result), params.max_num_iter,
                                    params.tol, decision):
            pass
        del coarse
    if result is not None:
        upsampled = resample(result, phases.shape, order=0)
        if _has_every_label(upsampled, prepared.n_labels):
            phases = scope.fix(upsampled)  # a label lost on a coarse grid restarts from the mark
    level = Level(prepared.image, prepared.valid, prepared.phases, scope, spacing, tau, params.edge, domain)
    yield from iterate(level, problem, phases, params.max_num_iter, params.tol, decision)


def _with_marks(level, phases):
    """``phases`` with the level's marks in place (a copy when they change anything)."""
    if level.scope.seeds is None and level.scope.background is None:
        return phases
    return level.scope.fix(phases.copy())
