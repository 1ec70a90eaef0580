"""The worker-side logic without a viewer: throttling, pause/step/cancel, failures."""

import threading
import time

import numpy as np

from napari_heatseg.widgets._run import Failed, Gate, RunError, Update, throttled


def updates(n):
    for i in range(n):
        yield Update((...,), np.full((2, 2), i), i, float(-i), 0, 1)


class FakeClock:
    """Each state takes 10 ms of 'compute' time."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def run_all(generator):
    shown = []
    try:
        while True:
            shown.append(next(generator))
    except StopIteration as stop:
        return shown, stop.value


def test_at_most_ten_updates_per_second_and_the_last_state_returned():
    clock = FakeClock()

    def timed(n):
        for update in updates(n):
            clock.now += 0.01
            yield update

    shown, last = run_all(throttled(timed(300), Gate(), min_interval=0.1, clock=clock))  # 3 s of work
    assert 25 <= len(shown) <= 31  # ~10 per simulated second
    assert last.iteration == 299  # the final state always reaches the GUI


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
    assert len(shown) == 1 and last is None
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
