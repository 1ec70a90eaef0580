"""The chunked (dask/zarr) path equals the in-memory heat method (core/chunked.py)."""

import numpy as np
import pytest

import napari_heatseg as hs
from napari_heatseg.core.ictm.chunked import _percentiles, segment_chunked

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")
zarr = pytest.importorskip("zarr")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                       dashboard_address=None, silence_logs=40)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def _volume(dtype=np.int16, seed=0):
    rng = np.random.default_rng(seed)  # result-bearing seed
    zz, yy, xx = np.mgrid[:10, :36, :40]
    ball = (3 * (zz - 5)) ** 2 + (yy - 14) ** 2 + (xx - 15) ** 2 < 9**2
    slab = (yy > 24) & (xx > 22)
    image = 400.0 + 600 * ball + 300 * slab + rng.normal(0, 120, ball.shape)
    start = np.zeros(ball.shape, np.uint16)
    start[4:7, 11:17, 12:18] = 5
    start[3:6, 28:32, 28:34] = 9
    return image.astype(dtype), start


@pytest.mark.slow
@pytest.mark.parametrize("model", ["mean", "gaussian"])
def test_chunked_equals_in_memory(tmp_path, client, model):
    image, start = _volume()
    spacing = (2.0, 0.7, 0.7)
    params = dict(model=model, spacing=spacing, max_num_iter=12, lam=6.0 if model == "mean" else 1.5, min_std=0.05)
    ref = hs.segment(image, start, scope="all", coarse_to_fine=False, **params)
    out = segment_chunked(da.from_array(image, chunks=(5, 18, 20)), start, out=tmp_path / "labels.zarr",
                          **params)
    labels = out.compute()
    assert labels.dtype == ref.dtype
    np.testing.assert_array_equal(labels, ref)  # identical, not just close
    assert 5 in labels and set(np.unique(labels)) <= {0, 5, 9}
    stored = zarr.open_array(str(tmp_path / "labels.zarr"), mode="r")
    assert stored.chunks == (5, 18, 20)  # written chunk by chunk in the image's chunks


@pytest.mark.parametrize("model", ["mean", "gaussian"])
def test_chunked_defaults_follow_the_core(tmp_path, model):
    # the chunked path mirrors the heat method's defaults (lam, min_std, tau); if the core's
    # defaults are retuned, this says so
    image, start = _volume(seed=3)
    ref = hs.segment(image, start, scope="all", model=model, coarse_to_fine=False, max_num_iter=4)
    out = segment_chunked(image, start, out=tmp_path / "o.zarr", model=model, chunks=(10, 36, 40),
                          max_num_iter=4)
    np.testing.assert_array_equal(out.compute(), ref)


def test_chunked_from_zarr_store_with_nan(tmp_path, client):
    image, start = _volume(np.float32, seed=1)
    image[0, :5, :5] = np.nan  # carries no data, as in memory
    store = zarr.create_array(store=str(tmp_path / "image.zarr"), shape=image.shape, chunks=(10, 18, 20),
                              dtype=image.dtype)
    store[:] = image
    ref = hs.segment(image, start, scope="all", model="mean", coarse_to_fine=False, max_num_iter=20)
    out = segment_chunked(str(tmp_path / "image.zarr"), start, out=tmp_path / "o.zarr", model="mean",
                          max_num_iter=20)
    np.testing.assert_array_equal(out.compute(), ref)


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32, np.float64])
def test_global_percentiles_are_exact(dtype):
    rng = np.random.default_rng(2)
    data = rng.gamma(2.0, 30.0, (20, 30, 30))
    data[rng.random(data.shape) < 0.3] = 7  # many ties
    data = data.astype(dtype)
    if np.issubdtype(dtype, np.floating):
        data[0, 0, :4] = [np.nan, np.inf, -np.inf, np.nan]
    finite = data[np.isfinite(data)]
    work = da.from_array(data, chunks=(10, 15, 16)).astype(np.float32 if dtype == np.float32 else np.float64)
    (low, high), _ = _percentiles(work, finite.size)
    expected = np.percentile(finite.astype(work.dtype), [0.5, 99.5])
    assert low == expected[0] and high == expected[1]


@pytest.mark.parametrize("bad, match", [
    (dict(scope="object"), "scope"),
    (dict(model="gmm"), "model"),
    (dict(edge=0.5), "edge"),
])
def test_unsupported_options_are_refused(tmp_path, bad, match):
    image, start = _volume()
    with pytest.raises(ValueError, match=match):
        segment_chunked(image, start, out=tmp_path / "o.zarr", **bad)


def test_chunks_thinner_than_the_kernel_are_refused(tmp_path):
    image, start = _volume()
    with pytest.raises(ValueError, match="larger chunks"):
        segment_chunked(image, start, out=tmp_path / "o.zarr", chunks=(2, 4, 4))


def test_refuses_to_replace_an_existing_store(tmp_path):
    image, start = _volume()
    (tmp_path / "o.zarr").mkdir()
    with pytest.raises(OSError, match="already exists.*overwrite"):
        segment_chunked(image, start, out=tmp_path / "o.zarr")


def _both(image, start, tmp_path, **params):
    """(in-memory outcome, chunked outcome): the labels, or the error's type and message."""
    outcomes = []
    for run in (lambda: hs.segment(image, start, scope="all", coarse_to_fine=False, model="mean", **params),
                lambda: segment_chunked(image, start, out=tmp_path / f"o{len(outcomes)}.zarr", model="mean",
                                        **params).compute()):
        try:
            outcomes.append(run())
        except (ValueError, TypeError) as error:
            outcomes.append((type(error), str(error)))
    return outcomes


@pytest.mark.parametrize("case", ["fractional start", "negative start", "empty start", "marks only on NaN",
                                  "unknown parameter", "bad tau"])
def test_chunked_refuses_what_the_in_memory_path_refuses(tmp_path, case):
    image, start = _volume(dtype=np.float32)
    params = {}
    if case == "fractional start":
        start = start * 0.5
    elif case == "negative start":
        start = start.astype(np.int32) * -1
    elif case == "empty start":
        start = np.zeros_like(start)
    elif case == "marks only on NaN":
        image[start == 9] = np.nan
    elif case == "unknown parameter":
        params = {"sigma": 2.0}
    else:
        params = {"tau": -1.0}
    memory, chunked = _both(image, start, tmp_path, **params)
    assert isinstance(memory, tuple), "the in-memory path accepted it"
    assert chunked == memory


def test_chunked_warns_and_returns_the_start_on_a_constant_image(tmp_path):
    image, start = _volume()
    image = np.full_like(image, 7)
    with pytest.warns(UserWarning, match="the image is constant") as memory_warnings:
        memory = hs.segment(image, start, scope="all", coarse_to_fine=False, model="mean")
    with pytest.warns(UserWarning, match="the image is constant") as chunked_warnings:
        chunked = segment_chunked(image, start, out=tmp_path / "o.zarr").compute()
    assert str(chunked_warnings[0].message) == str(memory_warnings[0].message)
    np.testing.assert_array_equal(chunked, memory)
    np.testing.assert_array_equal(chunked, start)
