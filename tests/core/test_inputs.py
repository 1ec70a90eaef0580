import numpy as np
import pytest

from napari_heatseg.core._percentiles import robust_range
from napari_heatseg.core.inputs import prepare


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("layout", ["random", "ties", "sorted", "tiny"])
def test_robust_range_is_numpys_percentiles_exactly(dtype, layout):
    """The tail-only partial sort gives numpy.percentile's values bit for bit, also where a
    strided sample misjudges the tails (sorted data) and on tiny inputs."""
    rng = np.random.default_rng(3)
    data = rng.gamma(2.0, 30.0, 4 if layout == "tiny" else 50_000)
    if layout == "ties":
        data[rng.random(data.size) < 0.4] = 7
    if layout == "sorted":
        data = np.sort(data)[::-1]
    data = data.astype(dtype)
    work = np.dtype(np.float32 if dtype == np.float32 else np.float64)
    expected = np.percentile(data.astype(work), [0.5, 99.5])
    assert robust_range(data, work) == [expected[0], expected[1]]


def test_prepare_maps_the_percentiles_to_zero_and_one():
    rng = np.random.default_rng(4)
    image = rng.integers(0, 4096, (64, 80)).astype(np.uint16)
    start = np.zeros(image.shape, np.uint8)
    start[20:30, 20:30] = 1
    low, high = np.percentile(image.astype(np.float64), [0.5, 99.5])
    prepared = prepare(image, start)
    np.testing.assert_allclose(prepared.image[..., 0], (image - low) / (high - low), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype,offset", [(np.uint64, 2**63), (np.uint64, 2**64 - 2001), (np.int64, 2**62),
                                          (np.int64, -(2**63)), (np.int64, 2**63 - 1001)])
def test_64_bit_integers_far_from_zero_keep_their_contrast(dtype, offset):
    """float64 cannot tell 2**63 from 2**63 + 1000: the minimum is removed in integers first."""
    rng = np.random.default_rng(5)
    contrast = rng.integers(0, 1001, (40, 48))
    image = (np.asarray(offset, dtype) + contrast.astype(dtype)).astype(dtype)
    assert np.array_equal((image - image.min()).astype(np.int64), contrast - contrast.min())
    start = np.zeros(image.shape, np.uint8)
    start[10:20, 10:20] = 1
    prepared = prepare(image, start)
    assert not prepared.is_constant
    expected = prepare(contrast.astype(np.float64), start).image  # the same contrast near zero
    np.testing.assert_allclose(prepared.image, expected, atol=1e-6)
