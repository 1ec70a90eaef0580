import numpy as np
import pytest

import napari_heatseg as hs


def test_methods_lists_heat_first_and_every_name_runs_through_segment():
    names = hs.methods()
    assert names[0] == "heat" and len(names) == len(set(names))


def test_label_values_and_dtype_are_preserved():
    image = np.zeros((40, 60))
    image[5:20, 5:25] = 1
    image[22:38, 35:55] = 2
    image += np.random.default_rng(0).normal(0, 0.05, image.shape)
    start = np.zeros(image.shape, np.int64)
    start[10:14, 10:14] = 2**40
    start[28:32, 42:46] = 7
    labels = hs.segment(image, start, scope="object")
    assert labels.dtype == np.int64
    assert set(np.unique(labels)) == {0, 7, 2**40}
    assert labels[12, 12] == 2**40 and labels[30, 45] == 7


def test_bool_start_gives_bool_labels():
    image = np.zeros((32, 32))
    image[8:24, 8:24] = 1
    labels = hs.segment(image, image > 0.5)
    assert labels.dtype == bool and labels[16, 16] and not labels[2, 2]


def test_evolve_yields_steps_with_increasing_iterations():
    image = np.zeros((32, 32))
    image[8:24, 8:24] = 1
    start = np.zeros(image.shape, np.uint8)
    start[14:18, 14:18] = 1
    steps = list(hs.evolve(image, start, scope="all"))
    assert [s.iteration for s in steps] == list(range(len(steps)))
    assert isinstance(steps[-1], hs.Step)
    np.testing.assert_array_equal(steps[-1].labels, hs.segment(image, start, scope="all"))


def test_bad_arguments_are_refused_before_any_work():
    image = np.zeros((16, 16))
    start = np.ones((16, 16), np.uint8)
    with pytest.raises(ValueError, match="unknown method 'snake'.*choose one of"):
        hs.evolve(image, start, method="snake")
    with pytest.raises(TypeError, match="no parameter 'sigma'.*tau"):
        hs.evolve(image, start, sigma=2)
    with pytest.raises(ValueError, match="unknown scope"):
        hs.evolve(image, start, scope="everywhere")
    with pytest.raises(ValueError, match="tau"):
        hs.segment(image, start, tau=-1)
    with pytest.raises(ValueError, match="lam"):
        hs.segment(image, start, lam=float("nan"))


@pytest.mark.parametrize("dtype", [">u2", ">i4", "<u2"])
@pytest.mark.parametrize("method", ["heat", "threshold_otsu"])
def test_output_dtype_is_the_starts_byte_order_included(dtype, method):
    image = np.random.default_rng(0).random((32, 32))
    for value in (1, 3):  # labels 1..K are cast, others looked up
        start = np.zeros((32, 32), dtype)
        start[10:20, 10:20] = value
        assert hs.segment(image, start, method=method).dtype == np.dtype(dtype)


def test_no_iterations_return_the_start_itself():
    yy, xx = np.mgrid[:64, :64]
    image = ((yy - 23) ** 2 + (xx - 23) ** 2 < 100) + 0.0
    start = np.zeros((64, 64), np.uint8)
    start[20:26, 20:26] = 1  # a coarse-grid round trip would shrink it to 16 pixels
    np.testing.assert_array_equal(hs.segment(image, start, max_num_iter=0), start)


def test_kmeans_clusters_are_bounded_by_the_pixels():
    image = np.random.default_rng(0).random((16, 16))
    start = np.zeros((16, 16), np.uint8)
    start[4:8, 4:8] = 1
    with pytest.raises(ValueError, match="`n_clusters` must be a whole number from 2 to the number of pixels"):
        hs.segment(image, start, method="kmeans", n_clusters=100_000)
