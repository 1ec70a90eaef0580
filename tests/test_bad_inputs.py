"""The bad-input catalogue: every bad input gets a correct result or a clear error.

Each case is one parametrised test. An error must name the problem AND the fix (checked
with ``pytest.raises(..., match=...)``); a result must keep the output contract (shape and
dtype of the start, only the start's label values, inputs unmodified) and be the sensible
answer. Every call runs under a time limit, so a hang fails instead of stalling CI.
"""

import re
import subprocess
import sys
import tracemalloc
import warnings

import numpy as np
import pytest
from hang_guard import time_limit

import napari_heatseg as hs
from napari_heatseg.core import _memory, inputs


def both(problem, fix):
    """A regex requiring the message to name the problem, then the fix."""
    return f"(?s){re.escape(problem)}.*{re.escape(fix)}"


def disk_image(n=32, radius=9):
    yy, xx = np.mgrid[:n, :n]
    return ((yy - n / 2) ** 2 + (xx - n / 2) ** 2 < radius**2).astype(np.float64)


def disk_start(n=32):
    start = np.zeros((n, n), dtype=np.uint8)
    start[n // 2 - 2: n // 2 + 2, n // 2 - 2: n // 2 + 2] = 1
    return start


IMG = disk_image()
START = disk_start()
DISK = IMG > 0


def iou(a, b):
    return np.count_nonzero(a & b) / max(np.count_nonzero(a | b), 1)


def run_segment(image, start, **kwargs):
    """segment() under the time limit, checking the output contract and that inputs survive."""
    copies = [np.array(x, copy=True) for x in (image, start) if isinstance(x, np.ndarray)]
    with time_limit():
        labels = hs.segment(image, start, **kwargs)
    for before, after in zip(copies, [x for x in (image, start) if isinstance(x, np.ndarray)]):
        np.testing.assert_array_equal(before, after)  # inputs are never modified
    start = np.asarray(start)
    assert labels.shape == start.shape
    assert labels.dtype == start.dtype
    assert set(np.unique(labels).tolist()) <= set(np.unique(start).tolist()) | {0}
    return labels


# --------------------------------------------------------------------------------------
# Bad inputs that must raise, with the message that tells the user what to do.

def _rgb():
    return np.stack([IMG, 1 - IMG, IMG], axis=-1)


ERRORS = {
    # image values
    "image all NaN": (lambda: (np.full(IMG.shape, np.nan), START, {}), ValueError,
                      both("no finite pixel", "Pass an image with finite values")),
    "image all inf": (lambda: (np.full(IMG.shape, np.inf), START, {}), ValueError,
                      both("no finite pixel", "Pass an image with finite values")),
    "label drawn only on NaN pixels": (
        lambda: (np.where(START > 0, np.nan, IMG), START, {}), ValueError,
        both("label(s) 1 of `start` lie only on NaN/inf pixels", "draw each label on some finite pixels")),
    # image types
    "image complex": (lambda: (IMG + 1j, START, {}), TypeError, both("`image` is complex", "np.abs")),
    "image dtype object": (lambda: (IMG.astype(object), START, {}), TypeError,
                           both("dtype object", "pass a numeric array")),
    "image of strings": (lambda: (IMG.astype(str), START, {}), TypeError,
                         both("not numbers", "pass a numeric array")),
    "image is a file path": (lambda: ("cells.tif", START, {}), TypeError,
                             both("is a path or string", "tifffile.imread(path)")),
    "image None": (lambda: (None, START, {}), TypeError, both("`image` is None", "pass a numpy array")),
    "image ragged list": (lambda: ([[1.0, 2.0], [3.0]], START, {}), TypeError,
                          both("could not convert", "rectangular numeric array")),
    "image empty": (lambda: (np.zeros((0, 32)), START, {}), ValueError,
                    both("`image` is empty", "at least one pixel")),
    # image shapes and channels
    "image 1D": (lambda: (IMG[0], START[0], {}), ValueError, both("got 1D shape", "pass image[np.newaxis]")),
    "image 4D": (lambda: (np.zeros((2, 3, 8, 8)), np.ones((3, 8, 8), int), {}), ValueError,
                 both("got 4D shape (2, 3, 8, 8)", "segment one volume at a time")),
    "image 5D": (lambda: (np.zeros((2, 2, 3, 8, 8)), np.ones((3, 8, 8), int), {}), ValueError,
                 both("got 5D shape", "segment one volume at a time")),
    "RGB volume without channel_axis": (lambda: (np.zeros((4, 8, 8, 3)), np.ones((4, 8, 8), int), {}), ValueError,
                                       both("got 4D shape (4, 8, 8, 3)", "pass channel_axis=-1")),
    "RGBA without channel_axis": (lambda: (np.dstack([IMG] * 4), START, {}), ValueError,
                                  both("spatial shape is (32, 32, 4)", "pass channel_axis=-1")),
    "RGB with the wrong channel_axis": (lambda: (_rgb(), START, {"channel_axis": 0}), ValueError,
                                        both("channel_axis=0 looks wrong", "pass channel_axis=-1")),
    "channel_axis ambiguous": (
        lambda: (np.zeros((3, 3, 8)), np.ones((3, 8), int), {"channel_axis": 2}), ValueError,
        both("Several axes could hold the channels", "channel_axis=0 or channel_axis=1")),
    "channel axis unknown on a 3D image": (
        lambda: (np.zeros((3, 3, 3)), np.ones((3, 3), int), {}), ValueError,
        both("one axis more than the start", "pass channel_axis=0 or channel_axis=1 or channel_axis=-1")),
    "channel_axis out of range": (lambda: (IMG, START, {"channel_axis": 5}), ValueError,
                                  both("channel_axis=5 does not exist", "use an axis in [-2, 1] or None")),
    "channel_axis a float": (lambda: (_rgb(), START, {"channel_axis": -1.0}), TypeError,
                             both("must be an int or None", "-1 for RGB")),
    "channel_axis leaves 1 spatial axis": (lambda: (IMG, START[0], {"channel_axis": 0}), ValueError,
                                           both("1 spatial axes", "pass channel_axis=None")),
    # start
    "start empty (all zeros)": (lambda: (IMG, np.zeros_like(START), {}), ValueError,
                                both("marks nothing", "draw at least one label")),
    "start shape differs": (lambda: (IMG, START[:-1], {}), ValueError,
                            both("`start` has shape (31, 32)", "same grid as the image")),
    "start transposed": (lambda: (IMG[:, :20], START[:, :20].T, {}), ValueError,
                         both("different order", "transpose the start")),
    "start negative labels": (lambda: (IMG, -START.astype(int), {}), ValueError,
                              both("negative labels", "use 0 for unmarked")),
    "start fractional (a probability map)": (lambda: (IMG, START * 0.7, {}), ValueError,
                                             both("fractional values", "threshold it (start > 0.5)")),
    "start with NaN": (lambda: (IMG, np.where(START > 0, 1.0, np.nan), {}), ValueError,
                       both("NaN or inf values", "np.nan_to_num(start)")),
    "start complex": (lambda: (IMG, START + 0j, {}), TypeError,
                      both("must hold integer labels", "pass an integer or bool array")),
    # spacing
    "spacing negative": (lambda: (IMG, START, {"spacing": (-1, 1)}), ValueError,
                         both("must be finite and positive, got (-1.0, 1.0)", "physical voxel size")),
    "spacing zero": (lambda: (IMG, START, {"spacing": 0}), ValueError,
                     both("must be finite and positive", "physical voxel size")),
    "spacing NaN": (lambda: (IMG, START, {"spacing": (np.nan, 1.0)}), ValueError,
                    both("must be finite and positive, got (nan, 1.0)", "physical voxel size")),
    "spacing inf": (lambda: (IMG, START, {"spacing": (np.inf, 1.0)}), ValueError,
                    both("must be finite and positive", "physical voxel size")),
    "spacing wrong length": (lambda: (IMG, START, {"spacing": (1, 1, 1)}), ValueError,
                             both("one number per spatial axis (2), got 3", "physical voxel size")),
    "spacing a string": (lambda: (IMG, START, {"spacing": "1,1"}), TypeError,
                         both("must be numbers", "spacing=(1.0, 1.0)")),
    "spacing axes 1e200 apart": (lambda: (IMG, START, {"spacing": (1e-100, 1e100)}), ValueError,
                                 both("axes differ by a factor of 1e+200", "same units")),
    "spacing too extreme to square": (lambda: (IMG, START, {"spacing": 1e300}), ValueError,
                                      both("too extreme for floating point", "other units")),
    # heat parameters
    "tau negative": (lambda: (IMG, START, {"tau": -1.0}), ValueError,
                     both("`tau` must be a finite positive number", "got -1.0")),
    "tau zero": (lambda: (IMG, START, {"tau": 0}), ValueError, both("`tau` must be a finite positive", "got 0")),
    "tau NaN": (lambda: (IMG, START, {"tau": np.nan}), ValueError, both("`tau` must be a finite positive", "got nan")),
    "lam negative": (lambda: (IMG, START, {"lam": -2}), ValueError, both("`lam` must be a finite positive", "got -2")),
    "lam zero": (lambda: (IMG, START, {"lam": 0.0}), ValueError, both("`lam` must be a finite positive", "got 0.0")),
    "lam NaN": (lambda: (IMG, START, {"lam": np.nan}), ValueError, both("`lam` must be a finite positive", "got nan")),
    "lam inf": (lambda: (IMG, START, {"lam": np.inf}), ValueError, both("`lam` must be a finite positive", "got inf")),
    "max_num_iter negative": (lambda: (IMG, START, {"max_num_iter": -1}), ValueError,
                              both("`max_num_iter` must be a whole number >= 0", "got -1")),
    "max_num_iter fractional": (lambda: (IMG, START, {"max_num_iter": 2.5}), ValueError,
                                both("`max_num_iter` must be a whole number >= 0", "got 2.5")),
    "tol negative": (lambda: (IMG, START, {"tol": -1}), ValueError, both("`tol` must be a finite", "got -1")),
    "edge out of [0, 1]": (lambda: (IMG, START, {"edge": 2}), ValueError, both("`edge` must lie in [0, 1]", "got 2")),
    "edge NaN": (lambda: (IMG, START, {"edge": np.nan}), ValueError, both("`edge` must lie in [0, 1]", "got nan")),
    # names
    "unknown method": (lambda: (IMG, START, {"method": "heatdiff"}), ValueError,
                       both("unknown method 'heatdiff'", "choose one of ['heat'")),
    "method None": (lambda: (IMG, START, {"method": None}), ValueError,
                    both("unknown method None", "choose one of")),
    "unknown scope": (lambda: (IMG, START, {"scope": "box"}), ValueError,
                      both("unknown scope 'box'", "choose one of 'inside', 'object', 'all'")),
    "scope a list": (lambda: (IMG, START, {"scope": ["all"]}), ValueError,
                     both("unknown scope ['all']", "choose one of")),
    "unknown parameter": (lambda: (IMG, START, {"sigma": 2}), TypeError,
                          both("has no parameter 'sigma'", "its parameters are: tau, lam")),
    "heat parameter given to a baseline": (lambda: (IMG, START, {"method": "threshold_otsu", "tau": 1.0}),
                                           TypeError, both("method 'threshold_otsu' has no parameter 'tau'",
                                                           "its parameters are")),
    "unknown region model": (lambda: (IMG, START, {"model": "unet"}), ValueError,
                             both("unknown region model 'unet'", "choose one of")),
}


@pytest.mark.parametrize("case", list(ERRORS), ids=list(ERRORS))
def test_bad_input_raises_clear_error(case):
    make, error, match = ERRORS[case]
    image, start, kwargs = make()
    with time_limit(), pytest.raises(error, match=match):
        hs.segment(image, start, **kwargs)


def test_evolve_raises_before_the_first_step():
    """Bad input is reported when evolve() is called, not at the first next()."""
    with pytest.raises(ValueError, match=both("unknown scope", "choose one of")):
        hs.evolve(IMG, START, scope="nowhere")
    with pytest.raises(ValueError, match=both("marks nothing", "draw at least one label")):
        hs.evolve(IMG, np.zeros_like(START))


# --------------------------------------------------------------------------------------
# Awkward but meaningful inputs: a correct result, never NaN, never a crash.

def _nan_sprinkled():
    image = IMG.copy()
    image[::5, ::3] = np.nan
    return image


def test_some_nan_pixels_still_find_the_disk():
    labels = run_segment(_nan_sprinkled(), START)
    assert iou(labels > 0, DISK) > 0.85


def test_some_inf_pixels_still_find_the_disk():
    image = IMG.copy()
    image[::4, ::4] = np.inf
    image[2::4, 1::4] = -np.inf
    labels = run_segment(image, START)
    assert iou(labels > 0, DISK) > 0.85


def test_nan_pixels_inside_the_start_are_ignored():
    image = IMG.copy()
    image[START > 0][:3] = np.nan
    image[15, 15] = np.nan
    labels = run_segment(image, START)
    assert iou(labels > 0, DISK) > 0.85


@pytest.mark.parametrize("scope", ["object", "inside", "all"])
def test_start_covering_everything_is_kept(scope):
    """One label everywhere: there is nothing else the image can be."""
    start = np.ones(IMG.shape, dtype=np.uint16) * 7
    labels = run_segment(IMG, start, scope=scope)
    np.testing.assert_array_equal(labels, start)


def test_start_covering_everything_with_two_labels():
    start = np.where(DISK, 3, 9).astype(np.int16)
    labels = run_segment(IMG, start)
    assert iou(labels == 3, DISK) > 0.9 and iou(labels == 9, ~DISK) > 0.9


@pytest.mark.parametrize("scope", ["object", "inside", "all"])
def test_constant_image_returns_the_start_with_a_warning(scope):
    """No contrast to follow: the start comes back unchanged, with a warning saying why."""
    with pytest.warns(UserWarning, match="constant"):
        labels = run_segment(np.full(IMG.shape, 42.0), START, scope=scope)
    np.testing.assert_array_equal(labels, START)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float16, np.float32, bool])
def test_image_dtypes_give_the_float64_answer(dtype):
    """Scale-free: uint8/uint16/int16 (negative), float16, float32 and bool images agree."""
    reference = run_segment(IMG, START)
    scale = {np.uint8: 200, np.uint16: 60000, np.int16: -30000}.get(dtype, 1)
    image = (IMG * scale + (5 if dtype == np.uint8 else 0)).astype(dtype)
    np.testing.assert_array_equal(run_segment(image, START), reference)


def test_huge_dynamic_range_is_normalised_without_overflow():
    big = np.finfo(np.float64).max
    image = np.where(DISK, big, -big)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow, no invalid value
        labels = run_segment(image, START)
    assert iou(labels > 0, DISK) > 0.9


def test_tiny_contrast_on_a_large_offset_is_found():
    labels = run_segment(1e6 + IMG * 1e-6, START)
    assert iou(labels > 0, DISK) > 0.9


@pytest.mark.parametrize("value,dtype", [(2**40, np.int64), (2**63, np.uint64), (65535, np.uint16)])
def test_huge_label_ids_are_preserved(value, dtype):
    start = START.astype(dtype) * dtype(value)
    labels = run_segment(IMG, start)
    assert labels.dtype == dtype and set(np.unique(labels).tolist()) == {0, value}


def test_bool_start_gives_bool_labels():
    labels = run_segment(IMG, START.astype(bool))
    assert labels.dtype == bool and iou(labels, DISK) > 0.9


def test_whole_number_float_start_is_accepted():
    labels = run_segment(IMG, START * 2.0)
    assert set(np.unique(labels).tolist()) == {0.0, 2.0}


def test_many_labels_one_per_pixel():
    """A label per pixel (144 phases) finishes and keeps the contract."""
    image = np.random.default_rng(0).random((12, 12))
    run_segment(image, np.arange(1, 145, dtype=np.int32).reshape(12, 12), max_num_iter=5)


@pytest.mark.parametrize("shape", [(1, 1), (1, 1, 1), (2, 1), (1, 32), (1, 4, 4)])
@pytest.mark.filterwarnings("ignore::UserWarning")  # one pixel is a constant image
def test_tiny_images(shape):
    image = np.arange(np.prod(shape), dtype=float).reshape(shape)
    start = np.zeros(shape, dtype=np.int32)
    start.flat[0] = 4
    labels = run_segment(image, start)
    assert labels.flat[0] == 4  # a single marked pixel is not lost


def test_one_slice_volume_equals_the_2d_answer():
    np.testing.assert_array_equal(run_segment(IMG[None], START[None])[0], run_segment(IMG, START))


def test_rgba_with_channel_axis():
    rgba = np.dstack([IMG * 255, (1 - IMG) * 255, IMG * 100, np.full(IMG.shape, 255)]).astype(np.uint8)
    labels = run_segment(rgba, START, channel_axis=-1)
    assert iou(labels > 0, DISK) > 0.9


def test_channel_first_matches_channel_last():
    rgb = _rgb()
    first = run_segment(np.moveaxis(rgb, -1, 0), START, channel_axis=0)
    np.testing.assert_array_equal(first, run_segment(rgb, START, channel_axis=-1))


def test_max_num_iter_zero_returns_the_start():
    np.testing.assert_array_equal(run_segment(IMG, START, max_num_iter=0), START)


@pytest.mark.parametrize("params", [{"tau": 1e-12}, {"tau": 1e12}, {"lam": 1e-30}, {"lam": 1e30},
                                    {"tol": 1.0}, {"max_num_iter": 10_000}])
def test_extreme_parameters_finish_and_keep_the_contract(params):
    run_segment(IMG, START, **params)


def test_prepared_knows_a_constant_image():
    assert inputs.prepare(np.full((8, 8, 3), 7, np.uint8), np.eye(8, dtype=int), channel_axis=-1).is_constant
    with_nan = np.where(np.eye(8) > 0, np.nan, 3.0)
    assert inputs.prepare(with_nan, 1 - np.eye(8, dtype=int)).is_constant
    assert not inputs.prepare(IMG, START).is_constant
    one_varying_channel = np.stack([np.ones_like(IMG), IMG], axis=0)
    assert not inputs.prepare(one_varying_channel, START, channel_axis=0).is_constant


def test_extreme_anisotropy_keeps_the_contract():
    run_segment(np.stack([IMG] * 3), np.stack([START] * 3), spacing=(1e6, 1.0, 1.0))


def test_masked_array_pixels_carry_no_data():
    image = np.ma.masked_array(IMG.copy(), mask=np.zeros(IMG.shape, bool))
    image.mask[:, :4] = True
    image.data[:, :4] = 1e9  # garbage under the mask must not matter
    labels = run_segment(image, START)
    assert iou(labels > 0, DISK) > 0.85


def test_read_only_and_fortran_ordered_inputs():
    image = np.asfortranarray(IMG)
    image.setflags(write=False)
    start = START.copy()
    start.setflags(write=False)
    assert iou(run_segment(image, start) > 0, DISK) > 0.9


def test_dask_input_gives_the_numpy_answer():
    da = pytest.importorskip("dask.array")
    labels = run_segment(da.from_array(IMG, chunks=16), da.from_array(START, chunks=16).compute())
    np.testing.assert_array_equal(labels, run_segment(IMG, START))


# --------------------------------------------------------------------------------------
# Heat parameters, checked when evolve() is called (these were strict xfails until the
# core fixed them in ce667a4).

PARAMETER_ERRORS = {
    "min_std zero": (lambda: hs.segment(IMG, START, min_std=0), ValueError,
                     both("`min_std` must be a finite positive number", "got 0")),
    "min_std negative": (lambda: hs.segment(IMG, START, min_std=-1), ValueError,
                         both("`min_std` must be a finite positive number", "got -1")),
    "components zero": (lambda: hs.segment(IMG, START, model="gmm", components=0), ValueError,
                        both("`components`", "whole number >= 1")),
    "tau a string": (lambda: hs.segment(IMG, START, tau="2"), TypeError, both("`tau`", "number")),
    "lam an array": (lambda: hs.segment(IMG, START, lam=np.array([1.0, 2.0])), TypeError,
                     both("`lam`", "number")),
    "model unhashable": (lambda: hs.segment(IMG, START, model=["gmm"]), ValueError,
                         both("unknown region model", "choose one of")),
    "evolve checks heat parameters when called": (lambda: hs.evolve(IMG, START, tau=-1), ValueError,
                                                  both("`tau` must be a finite positive number", "got -1")),
    "iter_callback not callable": (lambda: hs.evolve(IMG, START, iter_callback=3), TypeError,
                                   both("`iter_callback`", "callable")),
}


@pytest.mark.parametrize("case", list(PARAMETER_ERRORS), ids=list(PARAMETER_ERRORS))
def test_bad_parameter_raises_when_called(case):
    call, error, match = PARAMETER_ERRORS[case]
    with time_limit(), pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("scope", ["object", "inside", "all"])
def test_mixture_model_with_the_start_covering_everything(scope):
    """The background phase starts empty: it must not crash the mixture model or steal pixels."""
    start = np.ones(IMG.shape, np.uint8)
    np.testing.assert_array_equal(run_segment(IMG, start, model="gmm", scope=scope), start)


@pytest.mark.parametrize("method,image,start", [
    pytest.param("threshold_multiotsu", IMG, START, id="multi-Otsu on a two-valued image"),
    pytest.param("morph_chan_vese", IMG[None], START[None], id="morphological Chan-Vese on a 1-slice volume"),
    pytest.param("morph_geodesic", IMG[None], START[None], id="geodesic snake on a 1-slice volume"),
])
def test_baselines_on_awkward_images(method, image, start):
    """Fewer distinct values than multi-Otsu classes; an axis too short for a gradient."""
    labels = run_segment(image, start, method=method)
    assert iou(labels.reshape(DISK.shape) > 0, DISK) > 0.8


def test_edge_weight_on_a_one_slice_volume():
    labels = run_segment(IMG[None], START[None], edge=0.5)
    assert iou(labels[0] > 0, DISK) > 0.9


# --------------------------------------------------------------------------------------
# Memory: estimate first, refuse with the estimate and a way out.

def _pretend_available(monkeypatch, n_bytes):
    monkeypatch.setattr(_memory, "available_memory", lambda: n_bytes)


def test_check_memory_refuses_with_estimate_available_and_advice(monkeypatch):
    _pretend_available(monkeypatch, 2**30)  # 1 GiB free
    with pytest.raises(MemoryError, match=r"(?s)needs about \d+\.\d\d GiB.*only 1\.00 GiB is available"
                                          r".*napari_heatseg\.core\.chunked.*crop"):
        _memory.check_memory((512, 1024, 1024), 1)


def test_check_memory_passes_when_it_fits(monkeypatch):
    _pretend_available(monkeypatch, 2**30)
    assert 4 * 2**20 < _memory.check_memory((64, 64), 3, 3, model="gmm", tau=2.0) < 8 * 2**20


def test_check_memory_skips_when_free_memory_is_unknown(monkeypatch):
    _pretend_available(monkeypatch, None)
    assert _memory.check_memory((4096, 4096, 4096), 1) > 2**40


def test_segment_refuses_a_volume_too_big_for_ram(monkeypatch):
    """The refusal comes before any large allocation (prepare checks its own needs)."""
    _pretend_available(monkeypatch, 2**20)
    volume = np.broadcast_to(np.uint16(1), (64, 256, 256))  # views: cost nothing themselves
    start = np.broadcast_to(np.uint8(1), volume.shape)
    tracemalloc.start()
    try:
        with time_limit(), pytest.raises(MemoryError, match=both("needs about", "napari_heatseg.core.chunked")):
            hs.segment(volume, start)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20  # refused before allocating the 4 Mi-voxel working arrays


@pytest.mark.parametrize("method", ["random_walker", "chan_vese"])
def test_a_baseline_refuses_an_image_too_big_for_ram(monkeypatch, method):
    """random_walker failed after 24 s on a 200x512**2 volume: every method now refuses first."""
    _pretend_available(monkeypatch, 2**30)
    shape = (64, 256, 256) if method != "chan_vese" else (4096, 4096)  # chan_vese is 2D only
    image = np.broadcast_to(np.float32(0), shape).copy()
    image[(slice(None),) * (len(shape) - 1) + (slice(0, 8),)] = 1  # not constant
    start = np.zeros(shape, np.uint8)
    start[(slice(None),) * (len(shape) - 1) + (slice(2, 5),)] = 1
    with time_limit(), pytest.raises(MemoryError, match=both(f"method '{method}'", "method='heat' needs about")):
        hs.segment(image, start, method=method)


@pytest.mark.parametrize("shape,n_labels,n_channels,model,edge", [
    ((256, 256), 1, 1, "gaussian", 0.0), ((256, 256), 3, 1, "gaussian", 0.0),
    ((256, 256), 2, 3, "gmm", 0.0), ((256, 256), 4, 2, "mean", 0.5), ((32, 64, 64), 2, 1, "gaussian", 0.0),
])
@pytest.mark.parametrize("scope", ["all", "object"])
def test_memory_estimate_bounds_the_measured_peak(shape, n_labels, n_channels, model, edge, scope):
    """The estimate is an upper bound of the real peak (tracemalloc), and not a loose one.

    ``scope="all"`` is the worst case (the whole image is worked on); ``"object"`` works on
    the region of interest's bounding box, so there the estimate only has to bound it.
    """
    rng = np.random.default_rng(1)
    image = rng.random(shape + (n_channels,), dtype=np.float32)
    start = np.zeros(shape, np.int32)
    for k in range(n_labels):
        start[..., 5 + 12 * k: 15 + 12 * k, 10:30] = k + 1
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        hs.segment(image, start, channel_axis=-1, model=model, edge=edge, max_num_iter=2, scope=scope)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    estimate = _memory.estimate_memory(shape, n_labels, n_channels, model=model, edge=edge)
    assert peak <= estimate
    if scope == "all":
        assert estimate - 4 * 2**20 <= 2 * peak  # the per-voxel part is at most twice the truth


def test_available_memory_is_a_positive_number_here():
    available = _memory.available_memory()
    assert available is None or available > 0


# --------------------------------------------------------------------------------------
# The core must not pull in the GUI stack.

def test_core_imports_no_gui_modules():
    code = (
        "import sys, napari_heatseg, napari_heatseg.core, napari_heatseg.core.inputs\n"
        "gui = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'magicgui', 'vispy'})\n"
        "print(','.join(gui))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"the core imported GUI modules: {result.stdout}"


# --------------------------------------------------------------------------------------
# The `heatseg` command line: bad files and bad output paths get one clear line, exit 1,
# no traceback, and nothing half-written. (We run as root in CI, where chmod cannot make
# a folder read-only: a path under a regular file and /proc stand in for unwritable places.
# API errors reach the user through the same handler; "start shape differs" checks the relay.)

@pytest.fixture(scope="module")
def cli_files(tmp_path_factory):
    tifffile = pytest.importorskip("tifffile")
    folder = tmp_path_factory.mktemp("cli")
    tifffile.imwrite(folder / "image.tif", IMG.astype(np.float32))
    tifffile.imwrite(folder / "start.tif", START)
    tifffile.imwrite(folder / "start_small.tif", START[:-1])
    whole = (folder / "image.tif").read_bytes()
    (folder / "truncated.tif").write_bytes(whole[: len(whole) // 2])
    (folder / "empty.tif").write_bytes(b"")
    (folder / "corrupt.tif").write_bytes(np.random.default_rng(0).bytes(3000))
    np.save(folder / "image.npy", IMG)
    (folder / "truncated.npy").write_bytes((folder / "image.npy").read_bytes()[:700])
    (folder / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (folder / "a_file").write_text("not a folder")
    (folder / "existing.tif").write_bytes(b"precious")
    return folder


def _segment_args(image="image.tif", start="start.tif", out="out.tif", *extra):
    return ["segment", image, "--start", start, "-o", out, "--param", "max_num_iter=3", *extra]


def _cli(case, argv, message):
    return pytest.param(argv, message, id=case)


CORRUPT = both("looks corrupt or truncated", "re-export or copy it again")
CLI_CASES = [
    _cli("image file missing", _segment_args("missing.tif"), both("missing.tif: no such file", "check the path")),
    _cli("start file missing", _segment_args(start="missing.tif"), both("no such file", "check the path")),
    _cli("corrupt tif", _segment_args("corrupt.tif"), CORRUPT),
    _cli("truncated tif", _segment_args("truncated.tif"), CORRUPT),
    _cli("empty tif", _segment_args("empty.tif"), CORRUPT),
    _cli("truncated npy", _segment_args("truncated.npy"), CORRUPT),
    _cli("truncated png", _segment_args("image.png"), CORRUPT),
    _cli("labels to a lossy jpg", _segment_args(out="out.jpg"), both("cannot hold labels exactly", ".png or .tif")),
    _cli("unsupported file type", _segment_args("image.xyz"), both("unsupported file type", "use one of .tif")),
    _cli("output folder missing", _segment_args(out="no_such_folder/out.tif"),
         both("the output folder no_such_folder does not exist", "create it first")),
    _cli("output under a file (unwritable as root)", _segment_args(out="a_file/out.tif"),
         both("does not exist", "create it first")),
    _cli("output on a read-only file system", _segment_args(out="/proc/sys/out.tif"),
         both("is not writable", "choose another folder")),
    _cli("output in /proc", _segment_args(out="/proc/out.tif"), both("/proc/out.tif", "choose another folder")),
    _cli("output exists without --overwrite", _segment_args(out="existing.tif"),
         both("already exists", "--overwrite")),
    _cli("output is the input image", _segment_args(out="image.tif"),
         both("is the IMAGE file", "never replaces its inputs")),
    _cli("start shape differs", _segment_args(start="start_small.tif"),
         both("`start` has shape (31, 32)", "same grid as the image")),
    _cli("spacing not numbers", _segment_args("image.tif", "start.tif", "out.tif", "--spacing", "a,b"),
         both("--spacing 'a,b'", "e.g. 6.5,0.78,0.78")),
    _cli("spacing negative", _segment_args("image.tif", "start.tif", "out.tif", "--spacing=-1,1"),
         both("--spacing '-1,1'", "finite and positive")),
    _cli("unknown method", _segment_args("image.tif", "start.tif", "out.tif", "--method", "heatdiff"),
         both("--method 'heatdiff' is unknown", "choose one of heat")),
]


@pytest.mark.parametrize("argv,message", CLI_CASES)
def test_cli_bad_input(cli_files, argv, message):
    pytest.importorskip("napari_heatseg.cli")
    before = {p.name: p.read_bytes() for p in cli_files.iterdir() if p.is_file()}
    result = subprocess.run([sys.executable, "-m", "napari_heatseg.cli", *argv], cwd=cli_files,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert re.search(message, result.stderr), result.stderr
    after = {p.name: p.read_bytes() for p in cli_files.iterdir() if p.is_file()}
    assert after == before  # nothing written, nothing replaced, no temporary file left behind


def test_cli_memory_refusal_states_the_estimate(cli_files, monkeypatch, capsys):
    cli = pytest.importorskip("napari_heatseg.cli")
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(cli_files / "big.tif", np.zeros((256, 256), np.float32))
    start = np.zeros((256, 256), np.uint8)
    start[100:120, 100:120] = 1
    tifffile.imwrite(cli_files / "big_start.tif", start)
    _pretend_available(monkeypatch, 2**20)
    monkeypatch.chdir(cli_files)
    assert cli.main(["segment", "big.tif", "--start", "big_start.tif", "-o", "big_out.tif"]) == 1
    assert re.search(both("needs about", "only 0.00 GiB is available"), capsys.readouterr().err)
    assert not (cli_files / "big_out.tif").exists()


def test_cli_memory_refusal_comes_from_the_header_before_the_file_is_read(cli_files, monkeypatch, capsys):
    cli = pytest.importorskip("napari_heatseg.cli")
    tifffile = pytest.importorskip("tifffile")
    from napari_heatseg.core import batch

    tifffile.imwrite(cli_files / "big.tif", np.zeros((64, 256, 256), np.float32))
    tifffile.imwrite(cli_files / "big_start.tif", np.ones((64, 256, 256), np.uint8))
    _pretend_available(monkeypatch, 2**20)

    def no_reading(path):
        raise AssertionError(f"{path} was read before the memory check")

    monkeypatch.setattr(batch, "read_image", no_reading)
    monkeypatch.chdir(cli_files)
    assert cli.main(["segment", "big.tif", "--start", "big_start.tif", "-o", "big_out.tif"]) == 1
    err = capsys.readouterr().err
    assert re.search(both("read from the file's header", "only 0.00 GiB is available"), err), err
