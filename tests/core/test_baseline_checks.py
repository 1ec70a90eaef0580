"""Checks every baseline makes before it works: memory, parameters, degenerate inputs."""

import re
import time
import tracemalloc
import warnings

import numpy as np
import pytest

import napari_heatseg as hs
from napari_heatseg.core import _memory
from napari_heatseg.core.baselines import BASELINES, memory_bytes


def blobs(shape, n_channels, n_labels, seed=0):
    """Noisy image with one bright box per label, and a start inside each box."""
    rng = np.random.default_rng(seed)
    image = rng.normal(0, 0.2, shape + (n_channels,)).astype(np.float32)
    start = np.zeros(shape, np.uint8)
    width = shape[-1] // (n_labels + 1)
    for k in range(n_labels):
        box = tuple(slice(n // 4, n // 2) for n in shape[:-1]) + (slice(4 + k * width, 4 + k * width + width // 2),)
        image[box] += 1 + k
        start[tuple(slice(s.start + 1, s.stop - 1) for s in box)] = k + 1
    return (image if n_channels > 1 else image[..., 0]), start


# --------------------------------------------------------------------------------------
# Memory: every baseline refuses up front, with its estimate.

CASES = [((128, 128), 1, 1), ((128, 128), 3, 3), ((12, 48, 48), 3, 2)]


@pytest.mark.parametrize("method", list(BASELINES))
@pytest.mark.parametrize("shape,n_channels,n_labels", CASES)
def test_memory_model_bounds_the_measured_peak(method, shape, n_channels, n_labels):
    if method == "chan_vese" and len(shape) == 3:
        pytest.skip("chan_vese is 2D only")
    image, start = blobs(shape, n_channels, n_labels)
    kwargs = {"method": method, "scope": "all", "channel_axis": -1 if n_channels > 1 else None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hs.segment(image, start, **kwargs)  # once untraced: imports are not the method's memory
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            hs.segment(image, start, **kwargs)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
    estimate = memory_bytes(method, shape, n_labels, n_channels)
    assert peak <= estimate
    assert estimate - 4 * 2**20 <= 3 * peak  # and not a loose bound


@pytest.mark.parametrize("method", list(BASELINES))
def test_every_baseline_refuses_an_image_too_big_for_ram(monkeypatch, method):
    """Refused at once with both numbers and the heat method's smaller need as a way out."""
    shape = (2048, 2048)
    needed = memory_bytes(method, shape, 1)
    monkeypatch.setattr(_memory, "available_memory", lambda: needed - 1)
    image = np.broadcast_to(np.float32(1), shape)  # views: cost nothing themselves
    start = np.zeros(shape, np.uint8)
    start[100:200, 100:200] = 1
    began = time.perf_counter()
    with pytest.raises(MemoryError, match=rf"(?s)method '{method}'.*needs about.*is available"
                                          r".*method='heat' needs about.*crop"):
        hs.segment(image, start, method=method)
    assert time.perf_counter() - began < 5


def test_random_walker_refusal_at_2048_squared_names_about_2_gib(monkeypatch):
    """The issue's case: ~2 GB at 2048**2; refused when only 1 GiB is free."""
    monkeypatch.setattr(_memory, "available_memory", lambda: 2**30)
    start = np.zeros((2048, 2048), np.uint8)
    start[100:200, 100:200] = 1
    with pytest.raises(MemoryError, match=r"needs about 2\.\d\d GiB"):
        hs.segment(np.broadcast_to(np.float32(1), start.shape), start, method="random_walker")


def test_a_baseline_that_fits_runs(monkeypatch):
    image, start = blobs((64, 64), 1, 1)
    monkeypatch.setattr(_memory, "available_memory", lambda: memory_bytes("random_walker", (64, 64), 1))
    assert hs.segment(image, start, method="random_walker").any()


# --------------------------------------------------------------------------------------
# Parameters: finite, in range, whole where they count something; checked before any work.

IMAGE, START = blobs((32, 32), 1, 1)

BAD_PARAMETERS = [
    ("random_walker", "beta", float("nan"), ValueError),
    ("random_walker", "beta", "nan", TypeError),
    ("random_walker", "tol", 0.0, ValueError),
    ("chan_vese", "mu", -5, ValueError),
    ("chan_vese", "dt", float("inf"), ValueError),
    ("chan_vese", "max_num_iter", 2.5, TypeError),
    ("chan_vese", "lambda1", -1.0, ValueError),
    ("morph_chan_vese", "num_iter", 0, ValueError),
    ("morph_chan_vese", "smoothing", -1, ValueError),
    ("morph_geodesic", "balloon", float("nan"), ValueError),
    ("morph_geodesic", "alpha", 0, ValueError),
    ("morph_geodesic", "sigma", 1e300, ValueError),
    ("watershed", "sigma", -1.0, ValueError),
    ("watershed", "compactness", float("nan"), ValueError),
    ("region_growing", "tolerance", 0, ValueError),
    ("region_growing", "min_std", -0.1, ValueError),
    ("kmeans", "n_clusters", 2.0, TypeError),
    ("kmeans", "max_samples", 1, ValueError),
    ("threshold_otsu", "nbins", True, TypeError),
    ("threshold_multiotsu", "classes", 1, ValueError),
    ("threshold_local", "block_size", 1, ValueError),
    ("threshold_local", "offset", float("-inf"), ValueError),
]


@pytest.mark.parametrize("method,name,value,error", BAD_PARAMETERS)
def test_bad_baseline_parameter_is_refused_before_any_work(method, name, value, error):
    """``evolve`` raises (before its generator runs), naming the parameter, the method and the default."""
    default = BASELINES[method].__wrapped__.__kwdefaults__[name]
    with pytest.raises(error, match=rf"(?s)`{name}` of method '{method}' must be.*got.*default \({re.escape(repr(default))}\)"):
        hs.evolve(IMAGE, START, method=method, **{name: value})


def test_every_numeric_baseline_parameter_is_bounded():
    """No numeric parameter is left unchecked (``rng`` and ``method`` are not numbers to bound)."""
    for method, function in BASELINES.items():
        numeric = {name for name, default in function.__wrapped__.__kwdefaults__.items()
                   if name not in {"rng", "method"}}
        assert numeric == set(function.parameter_bounds), method


@pytest.mark.parametrize("method", list(BASELINES))
def test_default_parameters_given_explicitly_pass_the_checks(method):
    defaults = dict(BASELINES[method].__wrapped__.__kwdefaults__)
    defaults.pop("method", None)  # threshold_local's own `method` is shadowed by segment's
    BASELINES[method].check_parameters(**defaults)
    assert hs.segment(IMAGE, START, method=method, **defaults).shape == START.shape


# --------------------------------------------------------------------------------------
# Degenerate inputs: a flat grey image, too many labels for a per-label level set.

GREY_ONLY = ["threshold_otsu", "threshold_multiotsu", "threshold_local", "morph_chan_vese",
             "morph_geodesic", "chan_vese"]


def flat_luminance_images(n=32):
    """Colour images whose every pixel differs but whose grey value (luminance, channel mean) does not."""
    red = np.random.default_rng(3).random((n, n))
    green = (0.5 - 0.299 * red) / 0.587  # Rec. 601 luminance 0.5 everywhere
    return {"rgb": np.stack([red, green, np.zeros_like(red)], axis=-1),
            "two channels": np.stack([red, 1 - red], axis=-1)}


@pytest.mark.parametrize("method", GREY_ONLY)
@pytest.mark.parametrize("kind", ["rgb", "two channels"])
def test_grey_only_method_on_flat_grey_returns_the_start_with_a_warning(method, kind):
    """Otsu failed here with scikit-image's "Too many bins"; there is nothing to threshold."""
    image = flat_luminance_images()[kind]
    start = np.zeros(image.shape[:2], np.uint8)
    start[10:20, 10:20] = 7
    with pytest.warns(UserWarning, match=rf"method '{method}' sees only the image's grey values.*returning "
                                         r"the start unchanged.*'heat'"):
        labels = hs.segment(image, start, method=method, channel_axis=-1, scope="all")
    np.testing.assert_array_equal(labels, start)


def test_grey_only_method_still_thresholds_where_the_grey_varies():
    image = flat_luminance_images()["rgb"]
    image[8:24, 8:24] = [1.0, 0.0, 0.0]  # a red square; luminance 0.299 against 0.5
    start = np.zeros(image.shape[:2], np.uint8)
    start[12:20, 12:20] = 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no "sees only the grey values" here
        labels = hs.segment(image, start, method="threshold_otsu", channel_axis=-1)
    assert labels[8:24, 8:24].mean() > 0.9


@pytest.mark.parametrize("method", ["chan_vese", "morph_chan_vese", "morph_geodesic"])
def test_level_set_methods_refuse_hundreds_of_labels_at_once(method):
    """255 labels ran chan_vese past 2 minutes without a word; now refused at once, with the reason."""
    image = np.random.default_rng(0).random((128, 128))
    start = np.zeros(image.shape, np.uint8)
    for k in range(255):
        row, column = divmod(k, 16)
        start[row * 8 + 2: row * 8 + 5, column * 8 + 2: column * 8 + 5] = k + 1
    began = time.perf_counter()
    with pytest.raises(ValueError, match=rf"method '{method}' runs once per label.*255 labels.*at most 32.*'heat'"):
        hs.segment(image, start, method=method)
    assert time.perf_counter() - began < 10


def test_level_set_methods_take_up_to_32_labels():
    image = np.random.default_rng(0).random((48, 48))
    start = np.zeros(image.shape, np.uint8)
    for k in range(32):
        row, column = divmod(k, 8)
        start[row * 6 + 1: row * 6 + 4, column * 6 + 1: column * 6 + 4] = k + 1
    assert np.unique(hs.segment(image, start, method="morph_chan_vese", num_iter=2)).size > 1
