"""The heat method: threshold dynamics with the heat semigroup.

- :mod:`.params`: the parameters, their defaults, checks and memory estimate;
- :mod:`.levels`: the coarse-to-fine grids and what each holds (heat operator, pull scale);
- :mod:`.step`: one step (refit, diffuse, decide, apply the scope) and its energy;
- :mod:`.kernels`: the compiled two-phase loops (numba);
- :mod:`.solver`: :func:`threshold_dynamics`, the run from a start to convergence;
- :mod:`.chunked`: the same step on dask/zarr volumes larger than memory.
"""

from .params import HeatParameters, default_parameters
from .solver import threshold_dynamics

__all__ = ["HeatParameters", "default_parameters", "threshold_dynamics"]
