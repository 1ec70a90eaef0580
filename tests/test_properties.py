"""Property-based tests of the public API (Hypothesis).

Random tiny 2D/3D images of every supported dtype, intensity scale and offset (with
NaN/inf sprinkled into float images), optional channel axes, random starts (blobs with one
or several labels, up to huge ids such as 2**40 in int64), spacings, scopes, models and
parameters. For each: no exception but the documented ones, the output contract (shape,
dtype, label values), a non-increasing energy along :func:`napari_heatseg.evolve`, and
inputs left untouched. The profile is derandomised, so CI runs the same examples every time;
set HEATSEG_FUZZ_SCALE (default 1) to multiply the example counts for a longer local fuzz.
"""

import os
import re

import numpy as np
import pytest
from hang_guard import time_limit
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from scipy import ndimage

import napari_heatseg as hs

settings.register_profile(
    "heatseg-ci",
    deadline=None,  # the first example pays for imports and caches
    derandomize=True,  # the same examples on every run: reproducible CI
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SCALE = float(os.environ.get("HEATSEG_FUZZ_SCALE", "1"))


def fuzz(n_examples):
    return settings(settings.get_profile("heatseg-ci"), max_examples=int(n_examples * SCALE))


IMAGE_DTYPES = [np.uint8, np.uint16, np.int16, np.float16, np.float32, np.float64, bool]
START_DTYPES = {np.uint8: 255, np.uint16: 65535, np.int32: 2**31 - 1, np.int64: 2**62,
                np.uint64: 2**64 - 1}


def _cast(base, dtype, scale, offset):
    """A blobby float pattern turned into ``dtype`` at the given scale and offset."""
    if dtype is bool:
        return base > 0
    values = base * scale + offset
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.round(values), info.min, info.max).astype(dtype)
    if dtype == np.float16:
        values = np.clip(values, -6e4, 6e4)
    return values.astype(dtype)


@st.composite
def problems(draw, max_labels=4):
    """(image, start, kwargs, expected error or None) for one call of the public API."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if draw(st.booleans()):
        shape = (draw(st.integers(1, 24)), draw(st.integers(1, 24)))
    else:
        shape = (draw(st.integers(1, 8)), draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    n_channels = draw(st.sampled_from([0, 0, 1, 2, 3]))  # 0: no channel axis
    dtype = draw(st.sampled_from(IMAGE_DTYPES))
    scale = draw(st.sampled_from([1e-6, 1e-2, 1.0, 255.0, 3e4, 1e9]))
    offset = draw(st.sampled_from([0.0, -1000.0, 1.0, 1e6]))

    full = shape + ((n_channels,) if n_channels else ())
    base = ndimage.gaussian_filter(rng.standard_normal(full), sigma=[1.5] * len(shape) + [0] * bool(n_channels))
    image = _cast(base, dtype, scale, offset)
    if image.dtype.kind == "f" and draw(st.booleans()):
        holes = rng.random(full) < draw(st.sampled_from([0.02, 0.2, 0.9, 1.0]))
        image[holes] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    channel_axis = None
    if n_channels:
        channel_axis = draw(st.sampled_from([-1, 0, len(shape)]))
        image = np.moveaxis(image, -1, channel_axis)

    start_dtype = draw(st.sampled_from([*START_DTYPES, bool]))
    n_labels = 1 if start_dtype is bool else draw(st.integers(1, max_labels))
    top = 1 if start_dtype is bool else START_DTYPES[start_dtype]
    values = draw(st.lists(st.sampled_from([1, 2, 7, 255, 2**16 - 1, 2**40, top])
                           .filter(lambda v: v <= top) | st.integers(1, top),
                           min_size=n_labels, max_size=n_labels, unique=True))
    start = np.zeros(shape, dtype=np.uint64)
    grid = np.indices(shape)
    for value in values:
        centre = [rng.integers(n) for n in shape]
        radius = rng.uniform(0, max(shape) / 2)
        ball = sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius**2
        start[ball] = value
    start = start.astype(start_dtype)

    kwargs = {"channel_axis": channel_axis, "scope": draw(st.sampled_from(["object", "inside", "all"]))}
    if draw(st.booleans()):
        kwargs["spacing"] = tuple(draw(st.sampled_from([0.3, 1.0, 2.5, 5.0])) for _ in shape)
    kwargs["model"] = draw(st.sampled_from(["gaussian", "mean", "gmm"]))
    if draw(st.booleans()):
        kwargs["tau"] = draw(st.floats(0.5, 8.0))
    if draw(st.booleans()):
        kwargs["lam"] = draw(st.floats(0.05, 10.0))
    kwargs["edge"] = draw(st.sampled_from([0.0, 0.0, 0.5, 1.0]))
    kwargs["max_num_iter"] = draw(st.integers(0, 6))
    return image, start, kwargs, _expected_error(image, start, channel_axis)


def _valid(image, channel_axis):
    finite = np.isfinite(np.asarray(image, dtype=np.float64))
    return finite if channel_axis is None else np.all(finite, axis=channel_axis)


def _expected_error(image, start, channel_axis):
    """The documented refusals this input must get, or None."""
    valid = _valid(image, channel_axis)
    if not valid.any():
        return "no finite pixel"
    marked = np.unique(start[start != 0])
    if any(not valid[start == v].any() for v in marked):
        return "lie only on NaN/inf pixels"
    return None


def _check_contract(labels, start):
    assert labels.shape == start.shape
    assert labels.dtype == start.dtype
    assert set(np.unique(labels).tolist()) <= set(np.unique(start).tolist()) | {0}


@fuzz(500)
@given(problems())
@pytest.mark.filterwarnings("ignore::UserWarning")  # a constant image is reported and kept
def test_segment_keeps_the_contract(problem):
    image, start, kwargs, error = problem
    image_before, start_before = image.copy(), start.copy()
    event(f"{start.ndim}D {image.dtype} image, {np.unique(start[start != 0]).size} label(s), "
          f"{'refused: ' + error if error else 'segmented'}")
    with time_limit():
        if error is not None:
            with pytest.raises(ValueError, match=error):
                hs.segment(image, start, **kwargs)
            return
        labels = hs.segment(image, start, **kwargs)
    _check_contract(labels, start)
    np.testing.assert_array_equal(image, image_before)  # NaN-aware: equal_nan by default
    np.testing.assert_array_equal(start, start_before)


@fuzz(400)
@given(problems())
@pytest.mark.filterwarnings("ignore::UserWarning")  # a constant image is reported and kept
def test_evolve_energy_never_increases(problem):
    image, start, kwargs, error = problem
    if error is not None:
        return  # covered by test_segment_keeps_the_contract
    with time_limit():
        steps = list(hs.evolve(image, start, **kwargs))
    assert steps, "evolve yielded nothing"
    energies = [step.energy for step in steps]
    if _is_constant(image, kwargs["channel_axis"]) and np.isnan(energies).all():
        assert len(steps) == 1  # documented: a constant image gives the start back, no energy
        np.testing.assert_array_equal(steps[0].labels, start)
        return
    assert np.all(np.isfinite(energies)), energies
    assert all(later <= earlier for earlier, later in zip(energies, energies[1:])), energies
    iterations = [step.iteration for step in steps]
    assert iterations == sorted(set(iterations))
    for step in steps:
        _check_contract(step.labels, start)
    with time_limit():
        np.testing.assert_array_equal(steps[-1].labels, hs.segment(image, start, **kwargs))


def _is_constant(image, channel_axis):
    """Every channel takes a single value over the pixels where all channels are finite."""
    valid = _valid(image, channel_axis)
    channels = np.asarray(image, dtype=np.float64)
    channels = channels[..., None] if channel_axis is None else np.moveaxis(channels, channel_axis, -1)
    return all(np.ptp(channels[..., c][valid]) == 0 for c in range(channels.shape[-1]))


@fuzz(150)
@given(problems(max_labels=3))
@pytest.mark.filterwarnings("ignore::UserWarning")  # a constant image is reported and kept
def test_zero_iterations_without_coarse_level_return_the_start(problem):
    image, start, kwargs, error = problem
    if error is not None:
        return
    kwargs.update(max_num_iter=0, coarse_to_fine=False)
    with time_limit():
        labels = hs.segment(image, start, **kwargs)
    np.testing.assert_array_equal(labels, start)


# Documented refusals of baselines, with messages that name the problem and the fix.
BASELINE_REFUSALS = {
    "random_walker": "found no background seed.*mark a smaller region",
    "chan_vese": "works on 2D images only.*Use 'morph_chan_vese' for 3D",
}


@fuzz(250)
@given(problems(max_labels=3), st.sampled_from(hs.methods()[1:]))
@pytest.mark.filterwarnings("ignore::UserWarning")  # a constant image is reported and kept
def test_every_baseline_keeps_the_contract(problem, method):
    image, start, kwargs, error = problem
    kwargs = {key: kwargs[key] for key in ("channel_axis", "scope", "spacing") if key in kwargs}
    image_before, start_before = image.copy(), start.copy()
    with time_limit():
        if error is not None:
            with pytest.raises(ValueError, match=error):
                hs.segment(image, start, method=method, **kwargs)
            return
        try:
            labels = hs.segment(image, start, method=method, **kwargs)
        except ValueError as exc:
            if not re.search(BASELINE_REFUSALS.get(method, "^$"), str(exc)):
                raise
            event(f"documented refusal: {method}")
            return
    _check_contract(labels, start)
    np.testing.assert_array_equal(image, image_before)
    np.testing.assert_array_equal(start, start_before)
