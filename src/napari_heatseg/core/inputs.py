"""Validation and preparation of the user's inputs, done once at the API boundary.

Every method (the heat semigroup and every baseline) receives a :class:`Prepared`
bundle, so no algorithm has to care about dtypes, channel layout, intensity scale,
non-finite pixels or label values.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["Prepared", "prepare", "restore_labels", "supported_float_type"]

SCOPES = ("inside", "object", "all")


@dataclass(frozen=True)
class Prepared:
    """Inputs in the one layout every method works with.

    Attributes
    ----------
    image : (..., C) float32 ndarray
        Channels last (C = 1 for grey), each channel mapped robustly to about
        [0, 1] (0.5th and 99.5th percentiles), non-finite pixels set to 0.
    valid : (...) bool ndarray
        True where every channel of the input was finite.
    phases : (...) int32 ndarray
        The start as compact phase indices: 0 = unmarked, k = ``label_values[k-1]``.
    label_values : (K,) ndarray
        The start's label values, in the start's dtype.
    spacing : tuple of float
        Physical voxel size per spatial axis.
    scope : str
        One of ``"inside"``, ``"object"``, ``"all"``.
    """

    image: np.ndarray
    valid: np.ndarray
    phases: np.ndarray
    label_values: np.ndarray
    spacing: tuple
    scope: str

    @property
    def n_labels(self):
        return len(self.label_values)

    @property
    def spatial_shape(self):
        return self.phases.shape


def supported_float_type(dtype):
    """float32 and float64 stay; float16 becomes float32; everything else float64."""
    dtype = np.dtype(dtype)
    if dtype == np.float16:
        return np.dtype(np.float32)
    if dtype in (np.float32, np.float64):
        return dtype
    return np.dtype(np.float64)


def _as_array(value, name):
    if hasattr(value, "compute") and not isinstance(value, np.ndarray):
        value = value.compute()  # dask or xarray: the in-memory path needs it whole
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"`{name}` must be an array; numpy could not convert it: {exc}") from exc
    if array.dtype == object:
        raise TypeError(
            f"`{name}` has dtype object; pass a numeric array (for example np.asarray(x, dtype=float))."
        )
    if array.size == 0:
        raise ValueError(f"`{name}` is empty (shape {array.shape}); pass a 2D or 3D image.")
    return array


def _channel_last(image, channel_axis):
    if channel_axis is None:
        if image.ndim not in (2, 3):
            hint = ""
            if image.ndim == 3 or (image.ndim == 4 and image.shape[-1] in (3, 4)):
                hint = " If the last axis holds colour channels, pass channel_axis=-1."
            raise ValueError(
                f"`image` must be 2D (Y, X) or 3D (Z, Y, X) when channel_axis is None; "
                f"got shape {image.shape}.{hint} For a time series or a stack of volumes, "
                f"segment one volume at a time or use napari_heatseg.core.stack."
            )
        return image[..., np.newaxis]
    if isinstance(channel_axis, bool) or not isinstance(channel_axis, (int, np.integer)):
        raise TypeError(f"`channel_axis` must be an int or None, got {channel_axis!r}.")
    if not -image.ndim <= channel_axis < image.ndim:
        raise ValueError(
            f"channel_axis={channel_axis} does not exist in an image with {image.ndim} axes "
            f"(shape {image.shape}); use an axis in [{-image.ndim}, {image.ndim - 1}] or None for grey."
        )
    image = np.moveaxis(image, channel_axis, -1)
    if image.ndim - 1 not in (2, 3):
        raise ValueError(
            f"with channel_axis={channel_axis} the image has {image.ndim - 1} spatial axes "
            f"(shape {image.shape[:-1]}); heatseg segments 2D or 3D images."
        )
    return image


def _normalise(image):
    """Map each channel robustly to about [0, 1]; returns (float32 image, valid mask)."""
    if np.iscomplexobj(image):
        raise TypeError("`image` is complex; pass its magnitude (np.abs) or one real component.")
    if image.dtype == bool:
        image = image.astype(np.float32)
    work = image.astype(supported_float_type(image.dtype), copy=False)
    valid = np.all(np.isfinite(work), axis=-1)
    if not valid.any():
        raise ValueError("`image` has no finite pixel (all NaN or inf); there is nothing to segment.")
    out = np.empty(work.shape, dtype=np.float32)
    for c in range(work.shape[-1]):
        values = work[..., c][valid]
        low, high = np.percentile(values, [0.5, 99.5])
        if not high > low:  # a nearly constant channel: fall back to the full range
            low, high = values.min(), values.max()
        scale = 1.0 / (high - low) if high > low else 0.0
        channel = (work[..., c] - low) * scale
        out[..., c] = np.where(valid, channel, 0.0)
    return out, valid


def _check_start(start, spatial_shape):
    start = _as_array(start, "start")
    if start.dtype == bool:
        start = start.astype(np.uint8)
    if not (np.issubdtype(start.dtype, np.integer)):
        if np.issubdtype(start.dtype, np.floating) and np.all(np.isfinite(start)) and np.all(
            start == np.round(start)
        ):
            start = start.astype(np.int64)
        else:
            raise TypeError(
                f"`start` must hold integer labels (or bool), got dtype {start.dtype}; "
                f"convert it with start.astype(int) if its values are whole numbers."
            )
    if start.shape != tuple(spatial_shape):
        raise ValueError(
            f"`start` has shape {start.shape} but the image's spatial shape is {tuple(spatial_shape)}; "
            f"draw the start on the same grid as the image (for colour images pass channel_axis)."
        )
    if np.any(start < 0):
        raise ValueError("`start` has negative labels; use 0 for unmarked and positive integers for labels.")
    values = np.unique(start)
    values = values[values != 0]
    if values.size == 0:
        raise ValueError("`start` marks nothing (all zeros); draw at least one label on the object.")
    phases = np.where(start != 0, np.searchsorted(values, start) + 1, 0).astype(np.int32)
    return phases, values


def _check_spacing(spacing, ndim):
    if spacing is None:
        return (1.0,) * ndim
    if np.isscalar(spacing):
        spacing = (spacing,) * ndim
    try:
        spacing = tuple(float(s) for s in spacing)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`spacing` must be numbers, one per spatial axis; got {spacing!r}.") from exc
    if len(spacing) != ndim:
        raise ValueError(
            f"`spacing` needs one number per spatial axis ({ndim}), got {len(spacing)}: {spacing}."
        )
    if not all(np.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"`spacing` must be finite and positive, got {spacing}.")
    return spacing


def prepare(image, start, *, channel_axis=None, spacing=None, scope="object"):
    """Check and convert the public API's inputs. Inputs are never modified."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; choose one of {', '.join(map(repr, SCOPES))}.")
    image = _channel_last(_as_array(image, "image"), channel_axis)
    phases, values = _check_start(start, image.shape[:-1])
    normalised, valid = _normalise(image)
    spacing = _check_spacing(spacing, image.ndim - 1)
    return Prepared(normalised, valid, phases, values, spacing, scope)


def restore_labels(phases, prepared):
    """Map phase indices 0..K back to the start's label values, in the start's dtype."""
    lut = np.concatenate([[0], prepared.label_values]).astype(prepared.label_values.dtype)
    return lut[phases]
