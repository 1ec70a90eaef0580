"""Validation and preparation of the user's inputs, done once at the API boundary.

Every method (the heat semigroup and every baseline) receives a :class:`Prepared`
bundle, so no algorithm has to care about dtypes, channel layout, intensity scale,
non-finite pixels or label values. Every check here raises a ``TypeError`` (wrong
kind of value) or ``ValueError`` (wrong value) whose message says what was received
and what to pass instead; :func:`prepare` refuses, with ``MemoryError``, an image whose
preparation alone would not fit in memory (the heat method's own check is
:func:`napari_heatseg.core._memory.check_memory`). The start's own checks and the
map between its label values and phase indices are in :mod:`napari_heatseg.core.start_labels`.
"""

import os
from dataclasses import dataclass

import numpy as np

from ._memory import refuse_if_too_big
from ._percentiles import robust_range
from .start_labels import check_labels_have_data, check_start_labels

__all__ = ["Prepared", "prepare", "supported_float_type"]

SCOPES = ("inside", "object", "all")
_SPACING_RANGE = (1e-150, 1e150)  # squares (tau is in spacing units squared) stay finite and nonzero
_SPACING_RATIO = 1e6  # between the coarsest and the finest axis


@dataclass(frozen=True)
class Prepared:
    """Inputs in the one layout every method works with.

    Attributes
    ----------
    image : (..., C) float32 ndarray
        Channels last (C = 1 for grey), each channel mapped robustly to about
        [0, 1] (0.5th and 99.5th percentiles), non-finite pixels set to 0. Channels that
        are constant over the finite pixels, or repeat another channel, are left out (a
        grey image stored as RGB is grey); C = 1 if no channel varies.
    valid : (...) bool ndarray
        True where every channel of the input was finite.
    phases : (...) uint8 or int32 ndarray
        The start as compact phase indices: 0 = unmarked, k = ``label_values[k-1]``.
    label_values : (K,) ndarray
        The start's label values, sorted, in the start's dtype (bool stays bool).
    spacing : tuple of float
        Physical voxel size per spatial axis.
    scope : str or None
        One of ``"inside"``, ``"object"``, ``"all"`` (None only until
        :func:`~napari_heatseg.core.start_checks.check_start` chooses it).
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

    @property
    def is_constant(self):
        """True if every finite pixel has the same value: the image holds no contrast."""
        return not np.any(self.image, where=self.valid[..., np.newaxis])  # no boolean-indexed copy


def supported_float_type(dtype):
    """float32 and float64 stay; float16 becomes float32; everything else float64."""
    dtype = np.dtype(dtype)
    if dtype == np.float16:
        return np.dtype(np.float32)
    if dtype in (np.float32, np.float64):
        return dtype
    return np.dtype(np.float64)


# ---------------------------------------------------------------------------------------
# Memory of the preparation itself


def _prepare_bytes(spatial_shape, n_channels, dtype):
    """Peak bytes of :func:`prepare`: float work copy, float32 output, masks, phase map."""
    dtype = np.dtype(dtype)
    work = 0 if dtype in (np.float32, np.float64) else supported_float_type(dtype).itemsize * n_channels
    return int(np.prod(spatial_shape, dtype=np.float64) * (work + 5 * n_channels + 24))


# ---------------------------------------------------------------------------------------
# Arrays


def _as_array(value, name):
    if value is None:
        raise TypeError(f"`{name}` is None; pass a numpy array (or anything np.asarray accepts).")
    if isinstance(value, (str, bytes, os.PathLike)):
        raise TypeError(
            f"`{name}` is a path or string ({value!r}), not pixels; read the file first "
            f"(for example tifffile.imread(path)) and pass the array."
        )
    if hasattr(value, "compute") and not isinstance(value, np.ndarray):
        value = value.compute()  # dask or xarray: the in-memory path needs it whole
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(
            f"`{name}` must be an array; numpy could not convert it ({exc}). "
            f"Pass a rectangular numeric array."
        ) from exc
    if isinstance(value, np.ma.MaskedArray):
        array = np.ma.filled(value.astype(np.float64), np.nan) if name == "image" else array
    if array.dtype == object or array.dtype.kind in "USVMm":
        raise TypeError(
            f"`{name}` has dtype {array.dtype}, not numbers; pass a numeric array "
            f"(for example np.asarray(x, dtype=float))."
        )
    if array.size == 0:
        raise ValueError(
            f"`{name}` is empty (shape {array.shape}); pass a 2D (Y, X) or 3D (Z, Y, X) array "
            f"with at least one pixel."
        )
    return array


def _channel_last(image, channel_axis):
    if channel_axis is None:
        if image.ndim not in (2, 3):
            hint = ""
            if image.ndim in (3, 4) and image.shape[-1] in (3, 4):
                hint = " If the last axis holds colour channels, pass channel_axis=-1."
            elif image.ndim == 1:
                hint = " For a 1D profile, pass image[np.newaxis] and start[np.newaxis]."
            raise ValueError(
                f"`image` must be 2D (Y, X) or 3D (Z, Y, X) when channel_axis is None; "
                f"got {image.ndim}D shape {image.shape}.{hint} For a time series or a stack of "
                f"volumes, segment one volume at a time or use napari_heatseg.core.stack."
            )
        return image[..., np.newaxis]
    if isinstance(channel_axis, bool) or not isinstance(channel_axis, (int, np.integer)):
        raise TypeError(
            f"`channel_axis` must be an int or None, got {channel_axis!r}; pass the index of "
            f"the colour axis (-1 for RGB) or None for grey."
        )
    if not -image.ndim <= channel_axis < image.ndim:
        raise ValueError(
            f"channel_axis={channel_axis} does not exist in an image with {image.ndim} axes "
            f"(shape {image.shape}); use an axis in [{-image.ndim}, {image.ndim - 1}] or None for grey."
        )
    moved = np.moveaxis(image, channel_axis, -1)
    if moved.ndim - 1 not in (2, 3):
        raise ValueError(
            f"with channel_axis={channel_axis} the image of shape {image.shape} has "
            f"{moved.ndim - 1} spatial axes {moved.shape[:-1]}; heatseg segments 2D or 3D images: "
            f"pass channel_axis=None for a grey {image.ndim}D image, or an image with 2 or 3 axes "
            f"besides the channel axis."
        )
    return moved


def _normalise(image):
    """Map each channel robustly to about [0, 1]; returns (float32 image, valid mask)."""
    if np.iscomplexobj(image):
        raise TypeError("`image` is complex; pass its magnitude (np.abs) or one real component.")
    if image.dtype == bool:
        image = image.view(np.uint8)
    dtype = supported_float_type(image.dtype)
    if image.dtype.kind in "ui":  # whole numbers are finite: no float copy, no finiteness pass
        work, valid = image, np.ones(image.shape[:-1], dtype=bool)
    else:
        work = image.astype(dtype, copy=False)
        valid = np.all(np.isfinite(work), axis=-1)
    if not valid.any():
        raise ValueError(
            "`image` has no finite pixel (all NaN or inf); there is nothing to segment. "
            "Pass an image with finite values (check the file or the reader)."
        )
    every = bool(valid.all())
    out = np.zeros(work.shape, dtype=np.float32)
    for c in range(work.shape[-1]):
        values = work[..., c] if every else work[..., c][valid]
        if values.dtype.kind in "ui" and values.dtype.itemsize == 8:
            values = _minimum_removed(values)
        low, high = robust_range(values, dtype)
        if not high > low:  # a nearly constant channel: fall back to the full range
            low, high = dtype.type(values.min()), dtype.type(values.max())
        with np.errstate(over="ignore"):
            overflow = not np.isfinite(high - low)
        if overflow:  # a range beyond the float type: shrink it first
            shrink = max(abs(low), abs(high))
            values, low, high = values / shrink, low / shrink, high / shrink
        if high > low:  # a constant channel carries no information and stays 0
            if every:  # computed in the work type, stored as float32
                np.divide(np.subtract(values, low), high - low, out=out[..., c], casting="same_kind")
            else:
                out[..., c][valid] = (values - low) / (high - low)
    return out, valid


def _minimum_removed(values):
    """A 64-bit integer channel minus its minimum, exactly, as uint64.

    float64 holds integers exactly only up to 2**53, so ``2**63`` and ``2**63 + 1000``
    are one float; the differences to the minimum are exact and, for any range below
    2**53, exact as floats too. The subtraction wraps modulo 2**64, which for two's
    complement signed values gives the true non-negative difference. The shift does not
    change the normalised result (it is shift-invariant), so only images beyond float64's
    exact integers pay for this copy.
    """
    low, high = values.min(), values.max()
    if -(2**53) <= int(low) and int(high) <= 2**53:
        return values
    return values.view(np.uint64) - low.view(np.uint64)


def _check_spacing(spacing, ndim):
    if spacing is None:
        return (1.0,) * ndim
    given = spacing
    if isinstance(spacing, (str, bytes)) or isinstance(spacing, bool):
        raise TypeError(
            f"`spacing` must be numbers, one per spatial axis; got {given!r}. "
            f"Pass for example spacing=({', '.join(['1.0'] * ndim)})."
        )
    if np.ndim(spacing) == 0:
        spacing = (spacing,) * ndim
    try:
        spacing = tuple(float(s) for s in np.ravel(np.asarray(spacing, dtype=object)))
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"`spacing` must be numbers, one per spatial axis; got {given!r}. "
            f"Pass for example spacing=({', '.join(['1.0'] * ndim)})."
        ) from exc
    if len(spacing) != ndim:
        raise ValueError(
            f"`spacing` needs one number per spatial axis ({ndim}), got {len(spacing)}: {given!r}. "
            f"Give the physical voxel size along each spatial axis (no channel axis), or None."
        )
    if not all(np.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(
            f"`spacing` must be finite and positive, got {spacing}; pass the physical voxel size "
            f"per axis (napari's layer scale), or None for isotropic unit spacing."
        )
    low, high = _SPACING_RANGE
    if not all(low < s < high for s in spacing):
        raise ValueError(
            f"`spacing` {spacing} is too extreme for floating point (tau is in spacing units "
            f"squared); express it in other units (for example micrometres instead of metres) "
            f"so that every value lies in ({low:g}, {high:g})."
        )
    if max(spacing) / min(spacing) > _SPACING_RATIO:
        raise ValueError(
            f"`spacing` {spacing}: its axes differ by a factor of {max(spacing) / min(spacing):.3g}, more than "
            f"{_SPACING_RATIO:g}; no grid is that anisotropic (a heat kernel a voxel wide along one axis would "
            f"span nothing along another). Check that every value is in the same units."
        )
    return spacing


def prepare(image, start, *, channel_axis=None, spacing=None, scope="object"):
    """Check and convert the public API's inputs. Inputs are never modified.

    ``scope=None`` is kept as None: :func:`napari_heatseg.core.start_checks.check_start`
    chooses it from the start.

    Raises
    ------
    TypeError, ValueError
        For input of the wrong kind or value; the message names the argument, what was
        received and what to pass instead.
    MemoryError
        If preparing the image alone would need more memory than is available.
    """
    if scope is not None and (not isinstance(scope, str) or scope not in SCOPES):
        raise ValueError(f"unknown scope {scope!r}; choose one of {', '.join(map(repr, SCOPES))}, "
                         f"or None to choose from the start.")
    raw = _as_array(image, "image")
    image = _channel_last(raw, channel_axis)
    spacing = _check_spacing(spacing, image.ndim - 1)
    refuse_if_too_big(_prepare_bytes(image.shape[:-1], image.shape[-1], image.dtype),
                       image.shape[:-1], f"{image.shape[-1]} channel(s)")
    phases, values = check_start_labels(_as_array(start, "start"), image.shape[:-1], raw.shape, channel_axis)
    normalised, valid = _normalise(image)
    check_labels_have_data(phases, valid, values)
    return Prepared(_informative_channels(normalised), valid, phases, values, spacing, scope)


def _informative_channels(image, tolerance=0.01):
    """Drop channels that are constant or repeat a kept one (within ``tolerance`` of the
    normalised range at every pixel); at least one channel stays.

    A grey image stored as RGB or RGBA (a fluorescence PNG, say) then is grey: it gets the
    grey defaults instead of those chosen for colour photos, and the same answer as its
    grey original.
    """
    kept = []
    for c in range(image.shape[-1]):
        channel = image[..., c]
        if not channel.any():
            continue
        if not any(np.max(np.abs(channel - image[..., k])) <= tolerance for k in kept):
            kept.append(c)
    return image[..., kept or [0]] if len(kept) < image.shape[-1] else image


def warn_constant_image(stacklevel=3):
    """Say that the image holds no contrast and that the start comes back unchanged."""
    import warnings

    warnings.warn("the image is constant (it holds no contrast to follow); returning the start "
                  "unchanged. Check the layer or channel you passed.", UserWarning, stacklevel=stacklevel)
