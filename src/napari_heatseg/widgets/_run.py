"""Run the core off the GUI thread: Run / Pause / Step / Cancel around ``hs.evolve``.

The worker side (:func:`core_updates`, :func:`throttled`) is plain Python and runs in a
napari generator ``thread_worker``; :class:`RunController` lives on the main thread,
owns the worker and hands every shown state to a callback that writes the preview.
"""

import math
import threading
import time
from contextlib import nullcontext
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["Failed", "Gate", "RunController", "RunError", "Update", "bounding_box", "core_updates", "first_state_after",
           "throttled"]

#: At most this many preview updates per second reach the GUI thread.
MAX_UPDATES_PER_SECOND = 10
PACKAGE = Path(__file__).resolve().parents[1]  # napari_heatseg: where the core's warnings point
#: Two states are shown at least this many times the last one's drawing time apart.
DRAWS_APART = 3
#: No state is shown before a run has gone on this long, in seconds: a shorter run is drawn
#: once, as its result (a state on screen for less than that is a flicker, not a view of the
#: evolution, and each drawing costs a 1024² run 30-40 ms of the main thread and of its own).
FIRST_STATE_AFTER = 0.25


def first_state_after(min_interval):
    """Seconds into a run before its first state is shown, for states ``min_interval`` apart
    (0: every state is shown, the first at once)."""
    return min_interval and max(min_interval, FIRST_STATE_AFTER)


class RunError(Exception):
    """The core failed on the chosen inputs; the message carries the core's explanation.

    Not a RuntimeError: superqt's worker treats those as "worker deleted" and would end
    without emitting ``errored`` or ``finished``.
    """


class Failed(NamedTuple):
    """What the worker returns when the core failed (a returned exception would be re-raised)."""

    message: str


class Update(NamedTuple):
    """One state to show: ``labels`` for the run's region of the full grid.

    A slice-by-slice run fills one volume in the worker and every update refers to it
    (no copy per slice), with the ``lock`` it is written under: :meth:`write_into` reads
    it under that lock, so the preview never shows half a slice, and a state the
    throttle skips loses nothing (the next one shown holds every slice done so far).
    """

    region: tuple
    labels: np.ndarray
    iteration: int | None  # None for slice-by-slice runs
    energy: float
    done: int  # finished slices (slice-by-slice) or 0
    total: int  # slices to do (slice-by-slice) or 1
    lock: object = None  # held by the worker while it writes ``labels`` (slice-by-slice runs)
    #: The state before this one (heat runs), to count what this iteration changed.
    previous: np.ndarray | None = None
    changed: int | None = None  # voxels the last iteration changed (None: not counted)
    #: Box of ``labels`` (slices) holding every voxel changed since the state shown before;
    #: ``()``: none changed; None: unknown (the whole region is drawn).
    box: tuple | None = None

    def write_into(self, target):
        """Copy this state into ``target`` (the full spatial grid) at its region."""
        with nullcontext() if self.lock is None else self.lock:
            target[self.region] = self.labels

    def progress(self):
        """The status line while the run goes on: what changed, in plain words."""
        if self.iteration is None:
            return f"running: slice {self.done} of {self.total}"
        if self.changed is None:
            return f"running: iteration {self.iteration}"
        return f"running: iteration {self.iteration}, {self.changed:,} voxels changed"

    def details(self):
        """The status line's tooltip: the energy, for those who want it."""
        if self.iteration is None or math.isnan(self.energy):
            return ""
        return f"energy {self.energy:.6g} (threshold dynamics never increases it)"

    def outcome(self, iteration_limit=None):
        """The status line when the run has ended with this state (what the result holds).

        ``iteration_limit``: the heat method's ``max_num_iter``. A run that ended before it
        converged: no voxel moved any more, or the next state would have had a higher
        energy (:func:`napari_heatseg.core.ictm.step.iterate`).
        """
        if self.iteration is None:
            with nullcontext() if self.lock is None else self.lock:
                found = np.flatnonzero(self.labels.reshape(self.labels.shape[0], -1).any(axis=1))
            if not found.size:
                return f"done: {self.total} slices segmented, the object is on none of them"
            span = f"slice {found[0]}" if found.size == 1 else f"slices {found[0]}-{found[-1]}"
            return (f"done: the object is on {span} ({found.size} of {self.labels.shape[0]} slices; "
                    f"{self.total} segmented)")
        if self.changed is None or math.isnan(self.energy):  # a baseline, or a start returned as it was
            return "done"
        if iteration_limit is not None and self.iteration >= iteration_limit:
            return (f"done: stopped at the limit of {iteration_limit} iterations, {self.changed:,} voxels still "
                    "changing (raise 'max iterations' under Advanced to go on)")
        return f"done: converged after {self.iteration} iteration{'s' * (self.iteration != 1)}"


class Gate:
    """Pause / step / cancel, shared by the main thread and the worker."""

    def __init__(self):
        self._condition = threading.Condition()
        self._paused = False
        self._steps = 0
        self._cancelled = False
        self.abort_requested = lambda: False  # set to the worker's flag once it exists

    @property
    def paused(self):
        return self._paused

    def _set(self, paused=None, steps=0, cancelled=False):
        with self._condition:
            if paused is not None:
                self._paused = paused
            self._steps += steps
            self._cancelled |= cancelled
            self._condition.notify_all()

    def pause(self):
        self._set(paused=True)

    def resume(self):
        self._set(paused=False)

    def step(self):
        """Let one more state through, then stay paused."""
        self._set(paused=True, steps=1)

    def cancel(self):
        self._set(cancelled=True)

    def wait(self):
        """Block while paused; False once the run is cancelled (worker side)."""
        with self._condition:
            while self._paused and not self._steps and not self.stopped():
                self._condition.wait(0.05)
            if self.stopped():
                return False
            if self._paused:
                self._steps -= 1
            return True

    def stopped(self):
        """True once the run is cancelled (worker side)."""
        return self._cancelled or self.abort_requested()


def core_updates(inputs, stopped=lambda: False):
    """States of the run described by ``inputs`` (a generator; runs in the worker).

    The heat method yields every iteration and stops between two of them; a baseline runs
    in a child process that is killed as soon as ``stopped()`` says so (:mod:`._process`).
    """
    import napari_heatseg as hs

    try:
        if inputs.where == "propagate":
            yield from _stack_updates(inputs)
            return
        image, start = inputs.core_image_and_start()
        arguments = inputs.as_core_arguments()
        if inputs.method != "heat":
            from ._process import segment_in_process

            labels = segment_in_process(image, start, arguments, stopped)
            if labels is not None:
                yield Update(inputs.region(), labels, 1, math.nan, 0, 1)
            return
        before = np.asarray(arguments.get("initial", start))
        for step in hs.evolve(image, start, **arguments):
            yield Update(inputs.region(), step.labels, step.iteration, step.energy, 0, 1, previous=before)
            before = step.labels.copy()  # the core may reuse its array
    except Exception as exc:
        raise RunError(f"heatseg could not segment with method {inputs.method!r}: {exc}") from exc


def bounding_box(mask):
    """The smallest box (a tuple of slices) holding every True voxel of ``mask``; ``()`` if none."""
    box = []
    for axis in range(mask.ndim):
        along = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        if not along.size:
            return ()
        box.append(slice(int(along[0]), int(along[-1]) + 1))
    return tuple(box)


def _stack_updates(inputs):
    from napari_heatseg.core.stack import fill_stack

    volume, lock = inputs.start.copy(), threading.Lock()  # annotated slices stay as drawn
    for _, done, total in fill_stack(volume, inputs.image, inputs.start, mode="propagate", axis=0,
                                     lock=lock, **inputs.as_core_arguments()):
        yield Update((...,), volume, None, math.nan, done, total, lock)


def throttled(updates, gate, min_interval=1 / MAX_UPDATES_PER_SECOND, clock=time.monotonic,
              draw_seconds=lambda: 0.0):
    """Pass on at most one state per interval (every state while paused).

    The interval is ``min_interval``, or :data:`DRAWS_APART` times the time the last state
    took to draw (``draw_seconds()``, measured on the main thread) if that is longer, so
    drawing never takes more than a third of the main thread; ``min_interval=0`` passes
    every state on. The first one is passed on after :data:`FIRST_STATE_AFTER` at the
    earliest (or the interval, if longer). Each state passed on carries
    the voxels its iteration changed and the box of every voxel changed since the one shown
    before it (:attr:`Update.changed`, :attr:`Update.box`; the first one is drawn whole),
    counted for the states shown only: at 60x256x256, counting every iteration cost half
    the run's time.

    Returns the last state (with the box of what changed since the last one shown), None
    if cancelled, or :class:`Failed` if the core failed (so the main thread shows it
    once, as a napari notification).
    """
    last, shown_labels = None, None
    next_due = clock() + first_state_after(min_interval)

    def marked(update):
        nonlocal shown_labels
        if update.previous is None:  # nothing to compare with: drawn whole
            return update
        changed = int(np.count_nonzero(update.labels != update.previous))
        box = None if shown_labels is None else bounding_box(update.labels != shown_labels)
        shown_labels = update.labels.copy()
        return update._replace(previous=None, changed=changed, box=box)

    try:
        for update in updates:
            last = update
            if gate.paused or clock() >= next_due:
                yield marked(update)
                next_due = clock() + (min_interval and max(min_interval, DRAWS_APART * draw_seconds()))
            elif gate.paused:
                yield marked(update)  # a pause arrived meanwhile: show where the run stops
            if not gate.wait():
                return None
    except RunError as exc:
        return Failed(str(exc))
    return None if last is None else marked(last)


class RunController:
    """One run at a time in a napari ``thread_worker``.

    Parameters
    ----------
    on_update : callable
        ``on_update(update)`` on the main thread for every state shown.
    on_done : callable
        ``on_done(outcome, message)`` on the main thread when the run ends;
        ``outcome`` is ``'finished'``, ``'cancelled'`` or ``'failed'``. The warnings the
        core raised meanwhile are in :attr:`warnings`.
    min_interval : float
        Smallest time between two shown states, in seconds.
    """

    def __init__(self, on_update, on_done, min_interval=1 / MAX_UPDATES_PER_SECOND):
        self._on_update = on_update
        self._on_done = on_done
        self.min_interval = min_interval
        self.worker = None
        self.gate = None
        self._progress = None
        self._outcome = None
        self.n_updates = 0
        self.warnings = []  # messages of the warnings raised by the run going on (or the last one)
        self._iteration_limit = None  # max_num_iter of a heat run
        self.draw_seconds = 0.0  # how long the last state shown took to draw (main thread)

    @property
    def running(self):
        return self.worker is not None

    def start(self, inputs):
        from napari.qt.threading import thread_worker

        self.gate = Gate()
        self.n_updates = 0
        self.warnings = []
        self._iteration_limit = None
        if inputs.method == "heat":
            from napari_heatseg.core.ictm import HeatParameters

            self._iteration_limit = inputs.params.get("max_num_iter", HeatParameters().max_num_iter)
        self._outcome = ("cancelled", "cancelled")
        # napari's worker relays an exception to a notification; connecting "errored"
        # ourselves stops superqt from re-raising it on the main thread as well
        connect = {"yielded": self._shown, "returned": self._returned, "errored": self._errored,
                   "warned": self._warned, "finished": self._finished}
        self.worker = thread_worker(throttled, start_thread=False, connect=connect)(
            core_updates(inputs, self.gate.stopped), self.gate, self.min_interval,
            draw_seconds=lambda: self.draw_seconds)
        self.gate.abort_requested = lambda worker=self.worker: worker.abort_requested
        if inputs.where == "propagate":
            from napari.utils import progress

            self._progress = progress(total=inputs.start.shape[0] - 1, desc="heatseg: slice by slice")
        self.worker.start()

    def pause(self):
        if self.gate is not None:
            self.gate.pause()

    def resume(self):
        if self.gate is not None:
            self.gate.resume()

    def step(self):
        if self.gate is not None:
            self.gate.step()

    def cancel(self):
        """Stop the run; the last shown state stays in the preview."""
        if self.worker is not None:
            self.gate.cancel()
            self.worker.quit()

    def _shown(self, update):
        self.n_updates += 1
        self._write(update)

    def _write(self, update):
        if self._progress is not None:
            self._progress.total = update.total
            self._progress.n = update.done
            self._progress.refresh()
        began = time.perf_counter()
        self._on_update(update)
        self.draw_seconds = time.perf_counter() - began

    def _returned(self, last):
        if last is None:
            return
        if isinstance(last, Failed):
            from napari.utils.notifications import show_error

            show_error(last.message)
            self._outcome = ("failed", last.message)
            return
        self._write(last)
        self._outcome = ("finished", last.outcome(self._iteration_limit))

    def _warned(self, showwarning_args):
        """Keep the warnings heatseg raised (the worker also catches those of other threads)."""
        message, filename = str(showwarning_args[0]), showwarning_args[2]
        if Path(filename).resolve().is_relative_to(PACKAGE) and message not in self.warnings:
            self.warnings.append(message)

    def _errored(self, exc):  # a bug outside the core: napari's worker already notified
        self._outcome = ("failed", f"{type(exc).__name__}: {exc}")

    def _finished(self):
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        self.worker = None
        self._on_done(*self._outcome)
