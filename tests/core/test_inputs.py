import numpy as np
import pytest

from napari_heatseg.core.inputs import _robust_range, prepare


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
    assert _robust_range(data, work) == [expected[0], expected[1]]


def test_prepare_maps_the_percentiles_to_zero_and_one():
    rng = np.random.default_rng(4)
    image = rng.integers(0, 4096, (64, 80)).astype(np.uint16)
    start = np.zeros(image.shape, np.uint8)
    start[20:30, 20:30] = 1
    low, high = np.percentile(image.astype(np.float64), [0.5, 99.5])
    prepared = prepare(image, start)
    np.testing.assert_allclose(prepared.image[..., 0], (image - low) / (high - low), rtol=1e-6, atol=1e-7)
