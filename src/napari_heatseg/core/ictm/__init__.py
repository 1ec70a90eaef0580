"""The heat method: threshold dynamics with the heat semigroup.

- :mod:`.params`: the parameters, their defaults, checks and memory estimate;
- :mod:`.levels`: the coarse-to-fine grids and what each holds (heat operator, pull scale);
- :mod:`.step`: one step (refit, diffuse, decide, apply the scope) and its energy;
- :mod:`.kernels`: the compiled two-phase loops (numba);
- :mod:`.solver`: :func:`threshold_dynamics`, the run from a start to convergence;
- :mod:`.chunked`: the same step on dask/zarr volumes larger than memory.
"""

from .params import HeatParameters, default_parameters

__all__ = ["HeatParameters", "default_parameters", "threshold_dynamics"]


def __getattr__(name):
    """The solver (and with it numba) loads when first used: the parameters are read by
    ``heatseg --help`` and the widget's form without it."""
    if name == "threshold_dynamics":
        from .solver import threshold_dynamics

        return threshold_dynamics
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
