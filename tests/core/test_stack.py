"""Stack propagation, independent slices and full 3D (napari_heatseg.core.stack)."""

import numpy as np
import pytest

import napari_heatseg as hs
from napari_heatseg.core.stack import iter_stack, segment_stack
from dev_data import load_item


def _cone(n=9, size=48, noise=0.05, seed=0):
    """A stack of disks whose radius shrinks away from the middle slice; gone at the ends."""
    rng = np.random.default_rng(seed)  # result-bearing seed
    yy, xx = np.mgrid[:size, :size]
    radii = [max(0.0, 14 - 4 * abs(z - n // 2)) for z in range(n)]
    truth = np.stack([(yy - 24) ** 2 + (xx - 24) ** 2 < r**2 for r in radii])
    image = truth.astype(np.float32) + rng.normal(0, noise, truth.shape).astype(np.float32)
    return image, truth, radii


def test_propagation_follows_the_object_and_stops_where_it_ends():
    image, truth, radii = _cone()
    start = np.zeros(truth.shape, np.uint8)
    mid = len(radii) // 2
    start[mid] = truth[mid]
    out = segment_stack(image, start, mode="propagate", model="mean")
    areas = out.reshape(len(radii), -1).sum(1)
    for z, r in enumerate(radii):
        if r >= 6:  # re-fitted to each slice: the area follows the shrinking disk, not a copy
            iou = (out[z] & truth[z]).sum() / (out[z] | truth[z]).sum()
            assert iou > 0.8, (z, iou)
        if r == 0:
            assert areas[z] == 0, f"slice {z} has no object but got {areas[z]} px"
    assert areas[mid - 1] < 0.8 * areas[mid]  # not copied


def test_annotated_slices_are_never_overwritten():
    image, truth, _ = _cone()
    start = np.zeros(truth.shape, np.uint16)
    start[4, 20:28, 20:28] = 7  # a rough square: kept as drawn on its slice
    start[1, 22:26, 22:26] = 7
    out = segment_stack(image, start, model="mean", max_num_iter=20)
    np.testing.assert_array_equal(out[4], start[4])
    np.testing.assert_array_equal(out[1], start[1])
    assert out.dtype == start.dtype and set(np.unique(out)) <= {0, 7}


def test_generator_reports_progress_and_can_stop():
    image, truth, _ = _cone()
    start = np.zeros(truth.shape, np.uint8)
    start[4] = truth[4]
    gen = iter_stack(image, start, model="mean", max_num_iter=10)
    first = next(gen)
    index, labels, done, total = first
    assert index in (3, 5) and labels.shape == truth.shape[1:] and (done, total) == (1, 8)
    gen.close()  # cancelling leaves nothing running
    assert list(gen) == []


def test_nearest_annotation_drives_each_slice():
    image, truth, _ = _cone(n=9)
    start = np.zeros(truth.shape, np.uint8)
    start[2] = truth[2] * 1
    start[6] = truth[6] * 2
    seen = {i: lab for i, lab, _, _ in iter_stack(image, start, model="mean", max_num_iter=10)}
    assert sorted(seen) == [0, 1, 3, 4, 5, 7, 8]
    assert set(np.unique(seen[3])) <= {0, 1} and set(np.unique(seen[5])) <= {0, 2}


def test_independent_slices_from_one_start():
    image, truth, radii = _cone()
    start2d = truth[4].astype(np.uint8)
    out = segment_stack(image, start2d, mode="independent", model="mean", scope="all")
    assert out.shape == truth.shape
    for z in np.flatnonzero(np.array(radii) >= 6):  # slices holding a clear object
        iou = (out[z].astype(bool) & truth[z]).sum() / (out[z].astype(bool) | truth[z]).sum()
        assert iou > 0.8, (z, iou)


def test_full3d_equals_one_segment_call():
    image, truth, _ = _cone()
    start = np.zeros(truth.shape, np.uint8)
    start[4, 20:28, 20:28] = 1
    ours = segment_stack(image, start, mode="full3d", max_num_iter=15)
    np.testing.assert_array_equal(ours, hs.segment(image, start, max_num_iter=15))


def test_time_axis_and_channels():
    image, truth, _ = _cone(n=5)
    rgb = np.stack([image, image * 0.5, 1 - image], axis=-1)  # (T, Y, X, C)
    moved = np.moveaxis(rgb, 0, 2)  # (Y, X, T, C): the stack along axis 2
    start = np.zeros(truth.shape, np.uint8)
    start[2] = truth[2]
    out = segment_stack(moved, np.moveaxis(start, 0, 2), axis=2, channel_axis=-1, model="mean",
                        max_num_iter=20)
    ref = segment_stack(rgb, start, axis=0, channel_axis=-1, model="mean", max_num_iter=20)
    np.testing.assert_array_equal(np.moveaxis(out, 2, 0), ref)


@pytest.mark.parametrize("bad, match", [
    (dict(mode="sideways"), "unknown mode"),
    (dict(axis=5), "axis"),
    (dict(max_area_ratio=0.5), "max_area_ratio"),
])
def test_bad_options_are_named(bad, match):
    image, truth, _ = _cone(n=3)
    with pytest.raises(ValueError, match=match):
        segment_stack(image, truth.astype(np.uint8), **bad)


def test_empty_start_is_refused():
    image, truth, _ = _cone(n=3)
    with pytest.raises(ValueError, match="marks nothing"):
        segment_stack(image, np.zeros(truth.shape, np.uint8))


def _brain1_from_one_slice(**params):
    image, mask, spacing = load_item("mri3d_pyradiomics", "brain1")
    areas = mask.reshape(len(mask), -1).sum(1)
    k = int(np.argmax(areas))
    start = np.zeros_like(mask)
    start[k] = mask[k]
    out = segment_stack(image, start, spacing=spacing, **params)
    truth = mask > 0
    iou = (truth & (out > 0)).sum() / (truth | (out > 0)).sum()
    alone = (truth & (start > 0)).sum() / (truth | (start > 0)).sum()
    return out, mask, iou, alone


def test_brain1_propagation_from_the_largest_slice():
    # Measured (2026-11-22, two versions of the core): the annotated slice alone gives 3D IoU
    # 0.24; propagation with the piecewise-constant model reaches 0.47-0.48 (slices 15-17
    # re-fitted, IoU 0.64/0.78 on 15/17). Below slice 15 the 2D fit leaks into a brighter
    # structure (drift > 2 contrasts, or the contrast fades) and propagation stops there,
    # as it must; GT slice 14 is an odd 247 px. Floor 0.40.
    out, mask, iou, alone = _brain1_from_one_slice(model="mean")
    assert alone < 0.3
    assert iou > 0.40, iou
    areas = (out > 0).reshape(len(out), -1).sum(1)
    assert areas[:8].sum() == 0 and areas[20:].sum() == 0  # far from the tumour: nothing


def test_brain1_propagation_never_leaks_with_default_model():
    # with the default (likelihood) model a 2D slice may leak into the whole brain; the area
    # jump check must catch it: no slice may be larger than 3x the annotated one.
    out, mask, iou, alone = _brain1_from_one_slice()
    areas = (out > 0).reshape(len(out), -1).sum(1)
    assert areas.max() <= 3 * areas[int(np.argmax(mask.reshape(len(mask), -1).sum(1)))]
    assert iou >= alone - 0.02  # never worse than the annotated slice alone


def test_dask_stack_is_read_slice_by_slice():
    da = pytest.importorskip("dask.array")
    image, truth, _ = _cone()
    start = np.zeros(truth.shape, np.uint8)
    start[4] = truth[4]
    lazy = da.from_array(image, chunks=(1, 48, 48))
    np.testing.assert_array_equal(segment_stack(lazy, start, model="mean", max_num_iter=10),
                                  segment_stack(image, start, model="mean", max_num_iter=10))


def test_independent_slices_in_parallel_equal_serial():
    from concurrent.futures import ThreadPoolExecutor

    image, truth, _ = _cone()
    start2d = truth[4].astype(np.uint8)
    serial = segment_stack(image, start2d, mode="independent", model="mean", max_num_iter=10)
    with ThreadPoolExecutor(2) as pool:
        parallel = segment_stack(image, start2d, mode="independent", model="mean", max_num_iter=10,
                                 executor=pool)
    np.testing.assert_array_equal(parallel, serial)
    with pytest.raises(ValueError, match="independent"):
        segment_stack(image, start2d, mode="propagate", executor=pool)


def test_independent_slices_that_flood_are_named_in_a_warning():
    """A 2D start used on every slice: where its marks fall on background the answer inverts."""
    yy, xx = np.mgrid[:48, :48]
    stack = []
    for shift in (0, 0, 20):  # the object moves away from the marks on the last slice
        stack.append(((yy - 24) ** 2 + (xx - 14 - shift) ** 2 < 8**2) + np.random.default_rng(shift).normal(0, 0.1, (48, 48)))
    start = np.zeros((48, 48), np.uint8)
    start[22:27, 12:17] = 1
    with pytest.warns(UserWarning, match=r"1 of 3 slices came out more than half labelled.*slices 2\b"):
        segment_stack(np.stack(stack), start, mode="independent", scope="all")


def test_fill_stack_writes_each_slice_under_the_lock_before_yielding_it():
    from napari_heatseg.core.stack import fill_stack

    image, truth, _ = _cone()
    start = np.zeros(truth.shape, np.uint8)
    start[4] = truth[4]

    class RecordingLock:
        held = False
        entered = 0

        def __enter__(self):
            self.held, self.entered = True, self.entered + 1

        def __exit__(self, *exc):
            self.held = False

    out, lock = start.copy(), RecordingLock()
    written = []
    for index, done, total in fill_stack(out, image, start, lock=lock, model="mean", max_num_iter=10):
        assert not lock.held and lock.entered == done  # one locked write per slice, released
        written.append(index)
    assert sorted(written) == [0, 1, 2, 3, 5, 6, 7, 8] and (done, total) == (8, 8)
    np.testing.assert_array_equal(out, segment_stack(image, start, model="mean", max_num_iter=10))


@pytest.mark.parametrize("mode", ["propagate", "independent"])
def test_a_2d_image_is_not_a_stack(mode):
    image = np.random.default_rng(0).random((32, 32))
    start = np.zeros((32, 32), np.uint8)
    start[10:20, 10:20] = 1
    with pytest.raises(ValueError, match=f"--stack {mode}.*each slice would be a line.*Segment it whole"):
        segment_stack(image, start, mode=mode)


def test_propagation_says_where_and_why_it_stopped():
    image, truth, radii = _cone()
    start = np.zeros(truth.shape, np.uint8)
    start[4] = truth[4]
    with pytest.warns(UserWarning, match=r"label 1 stopped at slice 0 \(propagating towards lower slices\)"):
        out, stops = segment_stack(image, start, mode="propagate", model="mean", return_stops=True)
    assert sorted((stop.index, stop.step) for stop in stops) == [(0, -1), (8, 1)]  # the disk is gone there
    assert all(stop.label == 1 and stop.reason in ("faded", "vanished") for stop in stops)
    assert not out[0].any() and not out[8].any()
    gen = iter_stack(image, start, model="mean")  # the generator returns the same record
    with pytest.warns(UserWarning):
        while True:
            try:
                next(gen)
            except StopIteration as end:
                assert end.value == stops
                break


def test_a_leaked_slice_is_reported_as_a_leak():
    # the next slice holds a much larger disk (2.5 times the area): with max_area_ratio 2 it is a leak
    image, truth, _ = _cone()
    yy, xx = np.mgrid[:48, :48]
    image[5] = ((yy - 24) ** 2 + (xx - 24) ** 2 < 22**2) + 0.05 * np.random.default_rng(1).standard_normal((48, 48))
    start = np.zeros(truth.shape, np.uint8)
    start[4] = truth[4]
    with pytest.warns(UserWarning, match="slice 5"):
        out, stops = segment_stack(image, start, mode="propagate", model="mean", max_area_ratio=2.0,
                                   return_stops=True)
    leak, = [stop for stop in stops if stop.step == 1]
    assert (leak.index, leak.reason) == (5, "leaked") and not out[5:].any()


def test_mri3d_sample_slice_by_slice_from_its_ball():
    # issue 17: the bundled sample's ball, propagated slice by slice with scope "object".
    # Measured (2026-12-01): 3D IoU 0.511 (was 0.024: every neighbour slice leaked and was
    # emptied silently); the ball's slice is segmented first, propagation stops at slice 12
    # and 18 (leaks, retried and still leaking; the tumour's main part spans 12-17).
    from napari_heatseg.samples import load_sample

    sample = load_sample("mri3d")
    with pytest.warns(UserWarning, match="propagation"):
        out, stops = segment_stack(sample["image"], sample["start"], mode="propagate", spacing=sample["spacing"],
                                   scope="object", return_stops=True)
    truth, found = sample["truth"] > 0, out > 0
    assert (truth & found).sum() / (truth | found).sum() > 0.48
    assert {stop.step for stop in stops} == {-1, 1}
    spans = np.flatnonzero(truth.any(axis=(1, 2)))
    assert all(spans[0] - 2 <= stop.index <= spans[-1] + 1 for stop in stops)  # it stops at the tumour's ends


def test_with_scope_object_an_annotated_blob_grows_and_keeps_its_marks():
    image, truth, _ = _cone()
    start = np.zeros(truth.shape, np.uint8)
    start[4, 22:27, 22:27] = 1  # a small square inside the middle disk: a start, not an outline
    out = segment_stack(image, start, mode="propagate", scope="object", model="mean")
    assert out[4][start[4] > 0].all()  # no drawn voxel removed
    assert (out[4] & truth[4]).sum() / (out[4] | truth[4]).sum() > 0.8  # the slice's disk, grown from it
    kept = segment_stack(image, start, mode="propagate", scope="object", model="mean", refit_annotated=False)
    np.testing.assert_array_equal(kept[4], start[4])
