"""Region models: the fidelity (reaction) term ``D_i(f)`` of each phase.

A model is fitted to the pixels of its phase and returns a cost per pixel; the
threshold dynamics assigns each pixel to the phase with the smallest
``lam * D_i - sqrt(pi / tau) * G_tau u_i``. Every model here is fitted by minimising
``sum_x u_i(x) D_i(x)`` over its parameters (exactly, or by one descent step for the
mixture), so refitting never raises the energy.

- ``"mean"`` (piecewise constant, Chan-Vese): ``D = ||f - c||^2``.
- ``"gaussian"``: ``D = 1/2 (f - m)^T S^-1 (f - m) + 1/2 log det S``.
- ``"gmm"``: a mixture of Gaussians fitted by hard-assignment EM (as in GrabCut):
  ``D = min_k [ -log pi_k + 1/2 (f - m_k)^T S_k^-1 (f - m_k) + 1/2 log det S_k ]``.

Intensities are the robustly normalised ones (about [0, 1] per channel), so the
variance floor ``min_std`` is in those units too.
"""

import numba
import numpy as np

__all__ = ["MODELS", "make_model", "moment_change", "phase_moments"]

MIN_STD = 0.02  # variance floor: below 2 % of the intensity range we cannot tell noise apart


def _unreachable(image, out=None):
    """The cost of a phase that never had a pixel: nothing is known of it, so nothing joins it.

    (An empty phase keeps its last parameters instead, and may win pixels back.)
    """
    if out is None:
        return np.full(image.shape[:-1], np.inf, dtype=np.float32)
    out.fill(np.inf)
    return out


def moments(samples):
    """(count, sum, sum of outer products) of (N, C) samples, in float64."""
    samples = np.asarray(samples, dtype=np.float64)
    return len(samples), samples.sum(axis=0), samples.T @ samples


def _quadratic_cost(image, mean, precision, offset, out=None):
    """``1/2 (f - m)^T P (f - m) + offset`` per pixel of ``image`` (..., C), float32 (into
    ``out`` if given)."""
    if len(mean) == 1:  # grey: four passes over the image, no temporaries
        cost = np.subtract(image[..., 0], np.float32(mean[0]), out=out)
        np.multiply(cost, cost, out=cost)
        cost *= np.float32(0.5 * precision[0, 0])
    else:  # P = L L^T, so (f - m)^T P (f - m) = |L^T (f - m)|^2, in one compiled pass
        values = np.ascontiguousarray(image, dtype=np.float32)
        cost = np.empty(values.shape[:-1], np.float32) if out is None or not out.flags.c_contiguous else out
        _half_whitened_norm(values.reshape(-1, values.shape[-1]), mean.astype(np.float32),
                            np.linalg.cholesky(precision).astype(np.float32), cost.reshape(-1))
        if out is not None and cost is not out:
            out[...] = cost
            cost = out
    cost += np.float32(offset)
    return cost


@numba.njit(cache=True, nogil=True)
def _half_whitened_norm(values, mean, cholesky, out):
    """``out_i = 1/2 |L^T (f_i - m)|^2`` for the rows ``f_i`` of ``values``, without the two
    (N, C) temporaries of the numpy product and norm (1.4-1.6x faster; the region cost is
    60 % of a colour run's time at 2.5 Mpx, 28 % at 640 x 480)."""
    n_channels = values.shape[1]
    centred = np.empty(n_channels, np.float32)
    for i in range(values.shape[0]):
        for c in range(n_channels):
            centred[c] = values[i, c] - mean[c]
        total = np.float32(0.0)
        for j in range(n_channels):
            w = np.float32(0.0)
            for c in range(j, n_channels):  # L is lower triangular: L[c, j] = 0 for c < j
                w += centred[c] * cholesky[c, j]
            total += w * w
        out[i] = np.float32(0.5) * total


def _quadratic_total(count, total, outer, mean, precision, offset):
    """The sum of :func:`_quadratic_cost` over samples with these :func:`moments`, exactly:
    ``1/2 tr(P S) + count * offset`` with ``S`` the scatter of the samples about ``mean``."""
    if len(mean) == 1:  # grey: the same in scalars (small-array calls cost more than the maths)
        m = float(mean[0])
        scatter = float(outer[0, 0]) - 2.0 * float(total[0]) * m + count * m * m
        return 0.5 * float(precision[0, 0]) * scatter + count * offset
    scatter = outer - np.outer(total, mean) - np.outer(mean, total) + count * np.outer(mean, mean)
    return 0.5 * float(np.sum(precision * scatter)) + count * offset


def _gaussian_form(cov):
    """Precision and offset of the Gaussian cost ``1/2 (f - m)^T S^-1 (f - m) + 1/2 log det S``."""
    if cov.shape == (1, 1):
        return 1.0 / cov, 0.5 * float(np.log(cov[0, 0]))
    return np.linalg.inv(cov), 0.5 * np.linalg.slogdet(cov)[1]


def phase_moments(image, phases, n_phases):
    """Per phase: count, sum and sum of outer products of the pixels (rows of ``image``) in
    float64; pixels whose phase is ``n_phases`` are left out."""
    n_channels = image.shape[1]
    count = np.empty(n_phases)
    total = np.empty((n_phases, n_channels))
    outer = np.empty((n_phases, n_channels, n_channels))
    products = {(c, d): image[:, c] * image[:, d] for c in range(n_channels) for d in range(c, n_channels)}
    for k in range(n_phases):
        member = phases == k
        count[k] = np.count_nonzero(member)
        for c in range(n_channels):
            total[k, c] = np.sum(image[:, c], where=member, dtype=np.float64)
        for (c, d), product in products.items():
            outer[k, c, d] = outer[k, d, c] = np.sum(product, where=member, dtype=np.float64)
    return count, total, outer


def moment_change(values, gained, lost, n_phases):
    """The change of :func:`phase_moments` when the pixels (rows of ``values``) move from
    phases ``lost`` to ``gained``: one signed bincount per statistic (the fast way for the
    few pixels of a late step; :func:`phase_moments`' masked sums are for whole images)."""
    rows = np.concatenate([values, values]).astype(np.float64)
    sign = np.repeat([1.0, -1.0], len(values))
    phases = np.concatenate([gained, lost])

    def change(weights):
        return np.bincount(phases, weights=sign * weights, minlength=n_phases)

    n_channels = values.shape[1]
    total = np.stack([change(rows[:, c]) for c in range(n_channels)], axis=-1)
    outer = np.empty((n_phases, n_channels, n_channels))
    for c in range(n_channels):
        for d in range(c, n_channels):
            outer[:, c, d] = outer[:, d, c] = change(rows[:, c] * rows[:, d])
    return change(1.0), total, outer


class _QuadraticModel:
    """A model whose cost is ``1/2 (f - m)^T P (f - m) + offset``: fitted from moments, and
    the sum of its cost over a phase follows from the phase's moments alone."""

    mean = None
    from_moments = True  # fit_moments and total_cost replace fit and a pass over the pixels

    def quadratic_form(self):
        """``(m, P, offset)`` of the cost ``1/2 (f - m)^T P (f - m) + offset``, or None before
        the first fit."""
        return None if self.mean is None else (self.mean, self._precision, self._offset)

    @property
    def fitted(self):
        return self.mean is not None

    def fit(self, samples):
        self.fit_moments(*moments(samples))

    def cost(self, image, out=None):
        """The cost per pixel of ``image`` (..., C) as float32 (written to ``out`` if given)."""
        if self.mean is None:
            return _unreachable(image, out)
        return _quadratic_cost(image, self.mean, self._precision, self._offset, out)

    def total_cost(self, count, total, outer):
        """Sum of :meth:`cost` over samples with these :func:`moments` (no pass over them)."""
        if not count:
            return 0.0
        return _quadratic_total(count, total, outer, self.mean, self._precision, self._offset)


class MeanModel(_QuadraticModel):
    """Piecewise-constant model: the phase's mean colour."""

    def __init__(self, n_channels, **_):
        self._precision = 2.0 * np.eye(n_channels)  # 1/2 (f - m)^T 2I (f - m) = |f - m|^2
        self._offset = 0.0

    def fit_moments(self, count, total, outer):
        """Fit from sufficient statistics (see :func:`moments`)."""
        if count:
            self.mean = total / count


def _covariance(samples, mean, min_std):
    """Maximum-likelihood covariance of samples around ``mean``, floored (see below)."""
    diff = samples - mean
    return _floored(diff.T @ diff / max(len(samples), 1), min_std)


def _floored(scatter, min_std):
    """Covariance with eigenvalues clamped at ``min_std**2``.

    Clamping (rather than adding ``min_std**2``) is the exact minimiser of the Gaussian cost
    under the constraint ``S >= min_std**2 I``, so refitting never raises the energy.
    """
    if scatter.shape == (1, 1):  # its own eigenvalue
        return np.maximum(scatter, min_std**2)
    eigenvalues, eigenvectors = np.linalg.eigh(scatter)
    eigenvalues = np.maximum(eigenvalues, min_std**2)
    return (eigenvectors * eigenvalues) @ eigenvectors.T


class GaussianModel(_QuadraticModel):
    """One Gaussian (mean and covariance) per phase."""

    def __init__(self, n_channels, min_std=MIN_STD, **_):
        self.min_std = min_std
        self.cov = None

    def fit_moments(self, count, total, outer):
        """Fit from sufficient statistics (see :func:`moments`)."""
        if count:
            self.mean = total / count
            self.cov = _floored(outer / count - np.outer(self.mean, self.mean), self.min_std)
            self._precision, self._offset = _gaussian_form(self.cov)


class MixtureModel:
    """A Gaussian mixture per phase, refitted by one hard-assignment EM step per call."""

    from_moments = False

    def quadratic_form(self):
        """None: a mixture's cost is not one quadratic."""
        return None

    def __init__(self, n_channels, components=3, min_std=MIN_STD, max_samples=20000, rng=0, **_):
        self.components = int(components)
        self.min_std = min_std
        self.max_samples = max_samples
        self.rng = np.random.default_rng(rng)
        self.means = None
        self.covs = None
        self.log_weights = None

    @property
    def fitted(self):
        return self.means is not None

    def _init(self, samples):
        """k-means++ seeding on intensity, then components from the nearest seed."""
        k = min(self.components, len(samples))
        centres = [samples[self.rng.integers(len(samples))]]
        for _ in range(1, k):
            d2 = np.min([((samples - c) ** 2).sum(axis=1) for c in centres], axis=0)
            if d2.sum() <= 0:
                break
            centres.append(samples[self.rng.choice(len(samples), p=d2 / d2.sum())])
        centres = np.array(centres)
        nearest = np.argmin(((samples[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
        self._refit(samples, nearest, len(centres))

    def _refit(self, samples, assignment, k):
        means, covs, weights = [], [], []
        for j in range(k):
            member = samples[assignment == j]
            if len(member) == 0:
                continue
            mean = member.mean(axis=0)
            means.append(mean)
            covs.append(_covariance(member, mean, self.min_std))
            weights.append(len(member))
        self.means, self.covs = np.array(means), np.array(covs)
        self.log_weights = np.log(np.array(weights, dtype=np.float64) / sum(weights))

    def _component_costs(self, image):
        costs = []
        for mean, cov, log_weight in zip(self.means, self.covs, self.log_weights):
            precision, offset = _gaussian_form(cov)
            costs.append(_quadratic_cost(image, mean, precision, offset - log_weight))
        return np.stack(costs, axis=-1)

    def fit(self, samples):
        if len(samples) == 0:
            return
        samples = samples.astype(np.float64)
        if len(samples) > self.max_samples:
            samples = samples[self.rng.choice(len(samples), self.max_samples, replace=False)]
        if self.means is None:
            self._init(samples)
        assignment = np.argmin(self._component_costs(samples.astype(np.float32)), axis=-1)
        self._refit(samples, assignment, len(self.means))

    def cost(self, image, out=None):
        """The cost per pixel of ``image`` (..., C) as float32 (written to ``out`` if given)."""
        if self.means is None:
            return _unreachable(image, out)
        return np.min(self._component_costs(image), axis=-1, out=out)


def grey_difference(model, reference, scale=1.0):
    """Coefficients ``(A, B, C)`` (float32) with ``scale (D - D_ref) = A f^2 + B f + C`` for
    two fitted grey quadratic models, or None when the difference is not such a quadratic
    (another model, several channels, an unfitted phase)."""
    form, form_ref = model.quadratic_form(), reference.quadratic_form()
    if form is None or form_ref is None or len(form[0]) != 1:
        return None
    (m, precision, offset), (m_ref, precision_ref, offset_ref) = form, form_ref
    a, a_ref, m, m_ref = 0.5 * precision[0, 0], 0.5 * precision_ref[0, 0], m[0], m_ref[0]
    return (scale * np.array([a - a_ref, 2 * (a_ref * m_ref - a * m),
                              a * m * m - a_ref * m_ref * m_ref + offset - offset_ref])
            ).astype(np.float32)


def evaluate_quadratic(coefficients, f, out=None):
    """``A f^2 + B f + C`` per pixel of ``f``, float32, in four passes (Horner)."""
    square, linear, constant = coefficients
    out = np.multiply(f, square, out=out)
    out += linear
    out *= f
    out += constant
    return out


def cost_differences(models, image, scale=1.0, outs=None, costs=None):
    """``scale (D_k - D_0)`` per pixel for every phase ``k >= 1`` of ``models``, and the
    cost of phase 0 on that scale: 0, or inf if phase 0 was never fitted (nothing can join
    it; then the ``scale D_k`` themselves are returned). Phases are compared through these.

    Parameters
    ----------
    models : list of models
        Phase 0 first.
    image : (..., C) float32 ndarray
    scale : float
        Factor of every difference (the fidelity weight).
    outs : list of float32 ndarrays, optional
        Where to write each difference.
    costs : list of ndarrays, optional
        The models' costs on ``image``, if already known.
    """
    outs = outs or [None] * (len(models) - 1)
    reference = models[0]
    reference_cost = None
    differences = []
    for k, (model, out) in enumerate(zip(models[1:], outs), start=1):
        out = np.empty(image.shape[:-1], np.float32) if out is None else out
        coefficients = grey_difference(model, reference, scale)
        if not model.fitted:
            out.fill(np.inf)
        elif coefficients is not None:  # four passes instead of two costs and a difference
            evaluate_quadratic(coefficients, image[..., 0], out)
        else:
            np.copyto(out, model.cost(image) if costs is None else costs[k])
            if reference.fitted:
                if reference_cost is None:
                    reference_cost = reference.cost(image) if costs is None else costs[0]
                out -= reference_cost
            out *= np.float32(scale)
        differences.append(out)
    return differences, (0.0 if reference.fitted else np.inf)


MODELS = {"mean": MeanModel, "gaussian": GaussianModel, "gmm": MixtureModel}


def make_model(name, n_channels, **options):
    """Create the region model called ``name`` (one of :data:`MODELS`)."""
    try:
        return MODELS[name](n_channels, **options)
    except (KeyError, TypeError):
        raise ValueError(f"unknown region model {name!r}; choose one of {', '.join(MODELS)}.") from None
