"""Classical segmentation methods behind the same interface as the heat semigroup.

Each entry of :data:`BASELINES` maps a method name to a function
``fn(prepared, **params) -> phases``: it receives a
:class:`napari_heatseg.core.inputs.Prepared` bundle and returns an int array of the
spatial shape holding phase indices ``0..prepared.n_labels`` (0 = background).
Parameters are keyword-only, so :func:`napari_heatseg.segment` can list them.
"""

__all__ = ["BASELINES"]

BASELINES = {}
