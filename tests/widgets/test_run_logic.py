"""The worker-side logic without a viewer: throttling, pause/step/cancel, failures."""

import threading
import time

import numpy as np

from napari_heatseg.widgets._run import Failed, Gate, RunError, Update, bounding_box, throttled


def updates(n):
    for i in range(n):
        yield Update((...,), np.full((2, 2), i), i, float(-i), 0, 1)


class FakeClock:
    """Each state takes 10 ms of 'compute' time."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def timed_updates(clock, n):
    """``updates(n)``, each taking 10 ms of ``clock``'s time."""
    for update in updates(n):
        clock.now += 0.01
        yield update


def run_all(generator):
    shown = []
    try:
        while True:
            shown.append(next(generator))
    except StopIteration as stop:
        return shown, stop.value


def test_at_most_ten_updates_per_second_and_the_last_state_returned():
    clock = FakeClock()
    shown, last = run_all(throttled(timed_updates(clock, 300), Gate(), min_interval=0.1, clock=clock))  # 3 s
    assert 24 <= len(shown) <= 29  # ~10 per simulated second
    assert shown[0].iteration >= 24  # the first one after a quarter second
    assert last.iteration == 299  # the final state always reaches the GUI


def test_a_run_shorter_than_a_quarter_second_is_drawn_once_as_its_result():
    clock = FakeClock()
    shown, last = run_all(throttled(timed_updates(clock, 20), Gate(), min_interval=0.1, clock=clock))  # 0.2 s
    assert shown == [] and last.iteration == 19
    shown, last = run_all(throttled(timed_updates(clock, 5), Gate(), min_interval=0.0, clock=clock))  # every state
    assert [u.iteration for u in shown] == [0, 1, 2, 3, 4] and last.iteration == 4


def test_pause_shows_every_state_and_step_lets_exactly_one_through():
    gate = Gate()
    gate.step()  # paused, one state allowed past the gate
    generator = throttled(updates(10), gate, min_interval=10.0)
    assert next(generator).iteration == 0
    seen = []
    thread = threading.Thread(target=lambda: seen.append(next(generator)))
    thread.start()
    thread.join(timeout=2)
    assert [u.iteration for u in seen] == [1]  # the allowed step
    thread = threading.Thread(target=lambda: seen.append(next(generator, "stopped")))
    thread.start()
    time.sleep(0.3)
    assert len(seen) == 1 and thread.is_alive()  # blocked while paused
    gate.cancel()
    thread.join(timeout=2)
    assert not thread.is_alive() and seen[-1] == "stopped"  # cancel ends the generator


def test_cancel_returns_none_and_abort_flag_unblocks_a_paused_gate():
    gate = Gate()
    gate.cancel()
    shown, last = run_all(throttled(updates(5), gate))
    assert shown == [] and last is None
    gate = Gate()
    gate.pause()
    aborted = threading.Event()
    gate.abort_requested = aborted.is_set
    result = []
    thread = threading.Thread(target=lambda: result.append(gate.wait()))
    thread.start()
    aborted.set()
    thread.join(timeout=2)
    assert result == [False]


def test_a_core_failure_is_returned_not_raised():
    def failing():
        yield from updates(2)
        raise RunError("heatseg could not segment: bad tau")

    shown, last = run_all(throttled(failing(), Gate(), min_interval=0.0))
    assert len(shown) == 2 and last == Failed("heatseg could not segment: bad tau")


def _disk_stack(n=5, size=32):
    yy, xx = np.mgrid[:size, :size]
    truth = np.stack([(yy - 16) ** 2 + (xx - 16) ** 2 < (6 + z) ** 2 for z in range(n)])
    rng = np.random.default_rng(0)  # result-bearing seed
    image = (truth + 0.1 * rng.standard_normal(truth.shape)).astype(np.float32)
    start = np.zeros(truth.shape, np.uint8)
    start[n // 2] = truth[n // 2]
    return image, start


def test_slice_by_slice_fills_one_volume_and_skipped_states_lose_no_slice():
    """States the throttle skips are not lost: every update is the one volume, filled in place."""
    from napari_heatseg.core.stack import segment_stack
    from napari_heatseg.widgets._inputs import SegmentInputs
    from napari_heatseg.widgets._run import core_updates

    image, start = _disk_stack()
    inputs = SegmentInputs(image=image, start=start, method="heat", scope="object", where="propagate",
                           spacing=(1.0, 1.0, 1.0), params={"model": "mean", "max_num_iter": 20})
    shown, last = run_all(throttled(core_updates(inputs), Gate(), min_interval=0.0))
    assert len(shown) >= 5 and all(update.labels is last.labels for update in shown)  # no copy per slice
    shown, last = run_all(throttled(core_updates(inputs), Gate(), min_interval=60.0))
    assert shown == [] and (last.done, last.total) == (5, 5)  # every state skipped but the last (scope
    # "object": the annotated slice is segmented from its mark too)
    target = np.zeros_like(start)
    last.write_into(target)
    expected = segment_stack(image, start, mode="propagate", spacing=(1.0, 1.0, 1.0), scope="object",
                             model="mean", max_num_iter=20)
    np.testing.assert_array_equal(target, expected)
    assert expected[0].any() and expected[-1].any()


def test_write_into_waits_for_the_slice_being_written():
    lock = threading.Lock()
    update = Update((...,), np.ones((2, 2), np.uint8), None, float("nan"), 1, 2, lock)
    target = np.zeros((2, 2), np.uint8)
    with lock:  # the worker is writing a slice
        reader = threading.Thread(target=update.write_into, args=(target,))
        reader.start()
        reader.join(timeout=0.2)
        assert reader.is_alive() and not target.any()
    reader.join(timeout=2)
    assert not reader.is_alive() and target.all()


def test_bounding_box():
    mask = np.zeros((6, 7, 8), bool)
    assert bounding_box(mask) == ()
    mask[1, 2, 3] = mask[4, 2, 5] = True
    assert bounding_box(mask) == (slice(1, 5), slice(2, 3), slice(3, 6))


def test_each_state_shown_carries_every_change_since_the_last_one_shown():
    """Skipped states' changes are not lost: the box shown covers them all, so the states
    shown, drawn box by box over the first, give exactly the last; each counts the voxels
    its own iteration changed."""
    rng = np.random.default_rng(5)  # result-bearing seed
    states = [np.zeros((16, 16), np.uint8)]
    for i in range(40):
        state = states[-1].copy()
        y, x = rng.integers(0, 12, 2)
        state[y:y + 1 + i % 4, x:x + 4] = rng.integers(0, 3)  # small and larger changes
        states.append(state)
    clock = FakeClock()

    def timed():
        for i in range(1, len(states)):
            clock.now += 0.03
            yield Update((...,), states[i], i, 0.0, 0, 1, previous=states[i - 1])

    shown, last = run_all(throttled(timed(), Gate(), min_interval=0.1, clock=clock,
                                    draw_seconds=lambda: 0.05))  # 3 x 50 ms apart
    assert shown[0].box is None  # the first one whole
    assert len(shown) < len(states) / 3  # paced by the drawing time, not 10 per second
    for update in [*shown, last]:
        assert update.changed == np.count_nonzero(states[update.iteration] != states[update.iteration - 1])
    drawn = np.zeros((16, 16), np.uint8)
    for update in [*shown, last]:
        box = (...,) if update.box is None else update.box
        if update.box != ():
            drawn[box] = update.labels[box]
    np.testing.assert_array_equal(drawn, states[-1])
