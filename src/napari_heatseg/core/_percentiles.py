r"""Exact percentiles by partial sorting: ``numpy.percentile``'s values, bit for bit.

The robust intensity range (the 0.5th and 99.5th percentiles) is needed once per channel of
every image, in memory (:func:`robust_range`) and, by global passes over chunks, on the
out-of-core path (which builds on :func:`percentile_ranks` and
:func:`interpolate_percentile`). Both give exactly what ``numpy.percentile`` with its
default linear method gives: the percentile ``q`` of ``n`` sorted values ``x`` is

.. math::

    x_r + (x_{r+1} - x_r)\,\gamma, \qquad r = \lfloor q (n - 1) \rfloor,
    \quad \gamma = q (n - 1) - r,

(Hyndman & Fan 1996, definition 7), so only the order statistics ``x_r`` and ``x_{r+1}``
are needed, not a full sort.
"""

import numpy as np

__all__ = ["interpolate_percentile", "order_statistics", "percentile_ranks", "robust_range"]

ROBUST_PERCENTILES = (0.5, 99.5)


def percentile_ranks(n, qs=ROBUST_PERCENTILES):
    """For each percentile in ``qs``, the ranks ``(r, r + 1)`` of the two sorted values among
    ``n`` that numpy's default (linear) method interpolates, and the weight of the second."""
    ranks = []
    for q in np.true_divide(qs, 100):
        virtual = q * (n - 1)
        below = int(np.floor(virtual))
        ranks.append((below, min(below + 1, n - 1), np.float64(virtual - below)))
    return ranks


def interpolate_percentile(a, b, gamma):
    """``a + (b - a) gamma`` as ``numpy.percentile`` computes it (its ``_lerp``), as float64."""
    diff = b - a
    return np.float64(b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma)


def order_statistics(values, ranks):
    """``{r: the r-th smallest of values}`` for each rank, exactly, partitioning only the
    tails that hold them (the percentiles sought lie near the ends).

    A strided sample gives a threshold with enough values beyond it; the ranks within the
    values beyond the threshold are the ranks overall (shifted for the upper tail).
    """
    n = values.size
    sample = values[:: max(1, n // 4096)]
    found = {}
    for group, upper in (([r for r in ranks if r < n // 2], False), ([r for r in ranks if r >= n // 2], True)):
        if not group:
            continue
        need = n - min(group) if upper else max(group) + 1  # values that must lie in the tail
        share = min(1.0, 2 * need / n + 0.01)
        threshold = np.quantile(sample, 1 - share if upper else share)
        tail = values[values >= threshold] if upper else values[values <= threshold]
        if tail.size < need:  # the sample misled: use every value
            tail = values
        offset = n - tail.size if upper else 0
        ordered = np.partition(tail, [r - offset for r in group])
        found.update({r: ordered[r - offset] for r in group})
    return found


def robust_range(values, dtype):
    """The 0.5th and 99.5th percentiles of ``values`` (exactly ``numpy.percentile``'s, with
    the interpolation in ``dtype``)."""
    values = values.ravel()
    ranks = percentile_ranks(values.size)
    ordered = order_statistics(values, sorted({r for below, above, _ in ranks for r in (below, above)}))
    return [interpolate_percentile(dtype.type(ordered[below]), dtype.type(ordered[above]), gamma)
            for below, above, gamma in ranks]
