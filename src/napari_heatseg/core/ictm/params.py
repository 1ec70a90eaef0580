"""The heat method's parameters: one frozen object holding defaults, validation and help.

Every parameter is declared once, here, with its default, its check and its description;
the solver, the chunked backend, the memory estimate, the CLI and the napari widget all read
it from :class:`HeatParameters` (a new parameter is one field here, its use, and its test).
``None`` means "chosen from the prepared input" (:meth:`HeatParameters.resolve`).
"""

from dataclasses import dataclass, field, fields, replace

import numpy as np

from ..models import MODELS

__all__ = ["HeatParameters", "default_parameters"]


def _real(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"`{name}` must be a real number, got {value!r} ({type(value).__name__}).")


def _positive(name, value, maximum=np.inf):
    """A finite number in (0, maximum]: beyond ``maximum`` float32 arithmetic stops meaning anything."""
    _real(name, value)
    if not (np.isfinite(value) and 0 < value <= maximum):
        limit = "" if np.isinf(maximum) else f" (at most {maximum:g})"
        raise ValueError(f"`{name}` must be a finite positive number{limit}, got {value!r}.")


def _share(name, value, what):
    """A finite number in [0, 1]."""
    _real(name, value)
    if not (np.isfinite(value) and 0 <= value <= 1):
        raise ValueError(f"`{name}` must be a finite number in [0, 1] ({what}), got {value!r}.")


def _edge(value):
    _real("edge", value)
    if not (np.isfinite(value) and 0 <= value <= 1):
        raise ValueError(f"`edge` must lie in [0, 1] (0 = plain heat kernel), got {value!r}.")


def _whole(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be a whole number >= {minimum}, got {value!r}.")


def _param(default, help, check, **widget):
    """A field with its description (``help``), its check and hints for forms (``widget``)."""
    return field(default=default, metadata={"help": help, "check": check, "widget": widget})


# float32 stops being meaningful beyond these: lam * cost must stay finite, and the heat
# kernel must span between a hundredth of a voxel and the largest grid (tau in finest voxels squared)
_LAM_MAX = 1e30
_UNIT_TAU_RANGE = (1e-30, 1e30)


@dataclass(frozen=True)
class HeatParameters:
    """Parameters of threshold dynamics with the heat semigroup (``method="heat"``).

    Attributes
    ----------
    tau : float, optional
        Diffusion time in physical units squared (the smoothing scale ``sigma = sqrt(2 tau)``).
        Default: ``sigma`` = 2 of the finest voxels, and for ``scope="inside"`` at least 2.5 % of
        the marked region's size. Larger values give smoother, rounder masks; keep
        ``sigma >= 1.5`` voxels.
    lam : float, optional
        Weight of the region fidelity against the boundary length (useful range about
        0.03-10). Default: see :func:`default_parameters`.
    model : {'gaussian', 'gmm', 'mean'}
        Region model per phase (:mod:`napari_heatseg.core.models`).
    edge : float in [0, 1]
        How much the diffusion slows across image edges, so that boundaries settle on them:
        the heat operator is ``exp(-tau L_w)`` for the grid's graph Laplacian with weights
        ``1 - edge + edge exp(-beta |f_i - f_j|^2)`` (GrabCut's contrast term,
        :mod:`napari_heatseg.core.edge_heat`); 0 is the plain Gaussian.
    max_num_iter : int
        Largest number of iterations at full resolution.
    tol : float
        Stop when at most ``tol`` times the number of voxels change in an iteration.
    coarse_to_fine : bool
        Solve on a coarser grid first when the image is large (faster convergence).
    components : int
        Mixture components per phase for ``model="gmm"``.
    min_std : float, optional
        Smallest standard deviation of a region model, in normalised intensity units (the
        robust intensity range is 1). Default: see :func:`default_parameters`.
    reach : float
        ``scope="object"`` only: how far an object may grow, in depths of its mark (the
        radius of a drawn ball) beyond the mark; at least ``reach`` voxels.
    """

    tau: float | None = _param(None, "Diffusion time (physical units squared; sigma = sqrt(2 tau)). "
                               "Larger: smoother, rounder masks. Auto: sigma = 2 finest voxels.",
                               lambda v: _positive("tau", v),
                               label="smoothing tau", min=0.0, max=1e6, step=0.5)
    lam: float | None = _param(None, "Weight of the image fit against boundary length. Larger follows "
                               "the image more closely; smaller gives smoother masks.",
                               lambda v: _positive("lam", v, _LAM_MAX),
                               label="image fit lambda", min=0.0, max=1e6, step=0.1)
    model: str = _param("gaussian", "gaussian: mean and covariance per region; gmm: a mixture (textured "
                        "or colour regions); mean: Chan-Vese piecewise constant.",
                        lambda v: _choice("model", v, tuple(MODELS), "region model"), label="region model",
                        choices=tuple(MODELS))
    edge: float | None = _param(None, "0..1: how much the diffusion slows across image edges, so that "
                                "boundaries settle on them (0 = plain Gaussian). Auto: see the docs.",
                                lambda v: _edge(v),
                                label="edge", min=0.0, max=1.0, step=0.05)
    max_num_iter: int = _param(200, "Largest number of iterations at full resolution.",
                               lambda v: _whole("max_num_iter", v, 0), label="max iterations",
                               min=0, max=100_000)
    tol: float = _param(0.0, "Stop when at most this share of the voxels changes in an iteration.",
                        lambda v: _share("tol", v, "a share of the voxels; 0 = until nothing changes"),
                        label="tolerance", min=0.0, max=1.0, step=0.001)
    coarse_to_fine: bool = _param(True, "Solve on coarser grids first (faster on large images).",
                                  lambda v: _flag("coarse_to_fine", v), label="coarse to fine")
    components: int = _param(3, "Mixture components per region (model 'gmm').",
                             lambda v: _whole("components", v, 1), label="mixture components", min=1, max=20)
    min_std: float | None = _param(None, "Smallest standard deviation of a region model, in normalised "
                                   "intensity units (the robust range is 1).",
                                   lambda v: _positive("min_std", v, 10.0),
                                   label="min std", min=0.0, max=10.0, step=0.01)
    reach: float = _param(8.0, "scope 'object': how far an object may grow, in depths of its mark.",
                          lambda v: _positive("reach", v, 1e6), label="reach", min=0.1, max=1e3, step=1.0)

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                f.metadata["check"](value)

    @classmethod
    def from_keywords(cls, **params):
        """Build from keyword arguments, naming any unknown one and listing the known ones."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise TypeError(f"method 'heat' has no parameter {', '.join(map(repr, unknown))}; "
                            f"its parameters are: {', '.join(known)}.")
        return cls(**params)

    @classmethod
    def describe(cls):
        """``{name: (default, help, widget hints)}`` for forms and ``--help`` texts."""
        return {f.name: (f.default, f.metadata["help"], dict(f.metadata["widget"])) for f in fields(cls)}

    def resolve(self, prepared):
        """A copy with every ``None`` replaced by its default for ``prepared`` (see
        :func:`default_parameters` and :meth:`default_tau`)."""
        marked = np.count_nonzero(prepared.phases) if prepared.scope == "inside" else None
        return self.resolve_for(prepared.image.shape[-1], prepared.scope, prepared.spacing, marked)

    def resolve_for(self, n_channels, scope, spacing, marked_voxels=None):
        """:meth:`resolve` from the facts it needs: the number of channels, the scope, the
        spacing and (``scope="inside"``) the number of marked voxels."""
        defaults = default_parameters(self.model, n_channels, scope)
        finest = min(spacing)
        if self.tau is not None:
            unit_tau = self.tau / finest**2
            low, high = _UNIT_TAU_RANGE
            if not low <= unit_tau <= high:
                raise ValueError(
                    f"`tau` = {self.tau!r} is {unit_tau:.3g} finest voxels squared (spacing {tuple(spacing)}); "
                    f"the heat kernel then spans {'nothing' if unit_tau < low else 'more than any grid'}. "
                    f"Pass tau between {low * finest**2:.3g} and {high * finest**2:.3g} in the spacing's "
                    f"units squared (sigma = sqrt(2 tau)), or leave it out for the default.")
        return replace(
            self,
            tau=self.default_tau(spacing, marked_voxels) if self.tau is None else self.tau,
            lam=defaults["lam"] if self.lam is None else self.lam,
            min_std=defaults["min_std"] if self.min_std is None else self.min_std,
            edge=defaults["edge"] if self.edge is None else self.edge,
        )

    @staticmethod
    def default_tau(spacing, marked_voxels=None):
        """sigma = 2 finest voxels; for ``scope="inside"`` (``marked_voxels`` given) at least
        2.5 % of the marked region's size.

        A box drawn around an object says how large the object is, so the smoothing scale
        follows it (the boundary length term then means the same for a small and a large box).
        """
        sigma = 2.0 * min(spacing)
        if marked_voxels is not None:
            volume = marked_voxels * np.prod(spacing)
            sigma = max(sigma, 0.025 * volume ** (1.0 / len(spacing)))
        return sigma**2 / 2.0

    @property
    def model_options(self):
        return {"components": self.components, "min_std": self.min_std}

    def memory_bytes(self, spatial_shape, n_labels, n_channels=1):
        """Peak working memory, in bytes, beyond the caller's own arrays.

        Counts the prepared float32 image, the valid mask and the one-byte phase maps, per
        label phase one mask, one diffused indicator and one cost difference, the model's
        per-channel temporaries and the output. Calibrated with ``tracemalloc`` (peaks of
        40-243 bytes per voxel at 256**2-512**2, 32x64**2 and 64x128**2, for 1-16 labels, 1-4
        channels, every model, with and without edge weighting), plus a 15 % margin and 4 MiB
        of fixed overhead, so it bounds the measured peak from above.
        """
        per_voxel = 24 + 14 * n_labels + 14 * n_channels
        if self.model == "gmm":
            per_voxel += 4 * int(self.components)
        if self.edge is None or self.edge:  # (None may resolve to on) one contrast weight per axis, two recurrence terms and the half step
            per_voxel += 12 + 4 * len(spatial_shape)
        return int(np.prod(spatial_shape, dtype=np.float64) * per_voxel * 1.15) + 4 * 2**20


def _choice(name, value, choices, what):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {what} {value!r} for `{name}`; choose one of {', '.join(map(repr, choices))}.")


def _flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False, got {value!r}.")


def default_parameters(model, n_channels, scope="all"):
    """``lam``, ``min_std`` and ``edge`` used when they are not given.

    Grey images get a variance floor of 10 % of the (robust) intensity range: a narrower
    model of a dark, clean background pulls the faint halo of bright objects into them.
    Colour and multichannel images get 2 %: their phases differ by subtler colour shifts,
    which a wide floor would blur. ``lam`` is the matching weight of the fidelity term.
    With ``scope="inside"`` a box says where the object is, so a strong pull to smooth,
    compact shapes beats following every intensity change: grey images take a quarter of
    ``lam`` (boxes around nuclei in 2D and 3D and around the MRI tumour: 0.2-0.5 beats 2,
    while 0.05 loses the object). Colour images inside a box take the edge-aware heat
    operator (``edge=1``), whose boundary is cheap along image edges, with ``lam=0.01``:
    on the two photo sets together (GrabCut's 12 and 20 COCO photos) the best of a grid of
    ``edge`` and ``lam``; the leave-one-set-out scores are in
    ``benchmarks/results/box_defaults.md``. The edge-aware operator is off elsewhere: from
    boxes on grey images it gained on DSB nuclei (0.785 -> 0.802) and lost on cells3d
    (0.825 -> 0.805), so it stays off there.
    Chosen on the development sets (see the README's "How it compares").
    """
    grey = n_channels == 1
    if model == "mean":
        lam = 4.0
    elif scope == "inside":
        lam = 0.5 if grey else 0.01
    else:
        lam = 2.0 if grey else 0.5
    edge = 1.0 if scope == "inside" and not grey else 0.0
    return {"lam": lam, "min_std": 0.1 if grey else 0.02, "edge": edge}
