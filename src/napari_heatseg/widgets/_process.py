"""Run one baseline segmentation in a child process that Cancel can kill.

The baselines are library calls (scikit-image, SciPy, OpenCV) that return only when they
are done; most have no callback to stop them, and a thread cannot be stopped from outside.
A run of one in a child process can: the widget's worker waits for the answer, looks at
the Cancel flag every :data:`POLL_SECONDS`, and kills the child when it is set. The heat
method stops between iterations by itself and does not need this.

The child is a fresh interpreter (``python -c``; not :mod:`multiprocessing`, whose
``spawn`` and ``forkserver`` would run the user's main script again in the child, and whose
``fork`` would copy the viewer's threads). One child waits ready at all times, the core
imported (:func:`warm_up`; about a second), so a run starts at once; each run uses one child
and then a new one is made ready. Job and answer go through its stdin and stdout, pickled.
Warnings the core raises in the child are raised again in the caller, so they reach the
widget's status line like the heat method's. This module imports no Qt: the child imports it.
"""

import atexit
import os
import pickle
import queue
import subprocess
import sys
import threading
import warnings
from pathlib import Path

__all__ = ["POLL_SECONDS", "ProcessEnded", "segment_in_process", "warm_up"]

#: How often the waiting worker looks at the Cancel flag, in seconds.
POLL_SECONDS = 0.02
_SERVE = "from napari_heatseg.widgets._process import serve_one; serve_one()"
_spare = None  # the child waiting for its job
_spare_lock = threading.Lock()


class ProcessEnded(Exception):
    """The child process died without an answer (killed from outside, out of memory, ...)."""


def serve_one():
    """In the child: import the core, read one job from stdin, answer it on stdout, exit.

    The answer goes to the original stdout; anything the libraries print goes to stderr.
    """
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    from napari_heatseg.core.api import segment

    try:
        image, start, arguments = pickle.load(sys.stdin.buffer)
    except EOFError:  # the parent went away before giving a job
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            outcome = ("done", segment(image, start, **arguments))
        except Exception as exc:  # noqa: BLE001 - any error of the core is raised again in the parent
            outcome = ("error", type(exc), str(exc))
    pickle.dump((*outcome, [(w.category, str(w.message)) for w in caught]), answers,
                protocol=pickle.HIGHEST_PROTOCOL)
    answers.close()


def _start_child():
    package_root = str(Path(__file__).resolve().parents[2])  # napari_heatseg's directory's parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
    return subprocess.Popen([sys.executable, "-c", _SERVE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=env)


def warm_up():
    """Make a child ready (it imports the core meanwhile); does nothing if one is."""
    global _spare
    with _spare_lock:
        if _spare is None or _spare.poll() is not None:
            _spare = _start_child()


@atexit.register
def _stop_spare():
    global _spare
    with _spare_lock:
        child, _spare = _spare, None
    if child is not None:
        child.kill()
        child.wait()
        child.stdin.close()
        child.stdout.close()


def _take_child():
    global _spare
    with _spare_lock:
        child, _spare = _spare, None
    if child is None or child.poll() is not None:
        child = _start_child()
    threading.Thread(target=warm_up, name="heatseg baseline process", daemon=True).start()
    return child


def _exchange(child, job, answers):
    """Send ``job`` to ``child`` and put its answer (None if it died) into ``answers``.

    On a thread of its own: writing blocks while the child still imports the core.
    """
    try:
        pickle.dump(job, child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        child.stdin.close()
        answers.put(pickle.load(child.stdout))
    except (OSError, EOFError, pickle.UnpicklingError):  # a broken pipe or EOF: the child was killed or died
        answers.put(None)
    finally:
        child.stdout.close()


def segment_in_process(image, start, arguments, stopped):
    """``napari_heatseg.segment(image, start, **arguments)`` in a child process.

    Parameters
    ----------
    image, start : ndarray
        As for :func:`napari_heatseg.segment`.
    arguments : dict
        Its keyword arguments (picklable: no callbacks).
    stopped : callable
        ``stopped()`` is True once the run is to stop; the child is then killed.

    Returns
    -------
    labels : ndarray or None
        The result, or None if ``stopped()`` came first.

    Raises
    ------
    Exception
        The one the core raised in the child (its type and message), or
        :class:`ProcessEnded` if the child died without an answer.
    """
    child = _take_child()
    answers = queue.Queue()
    threading.Thread(target=_exchange, args=(child, (image, start, arguments), answers), daemon=True,
                     name="heatseg baseline exchange").start()
    try:
        while True:
            try:
                answer = answers.get(timeout=POLL_SECONDS)
                break
            except queue.Empty:
                if stopped():
                    return None
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
    if answer is None:
        raise ProcessEnded(f"the process running the method ended without an answer (exit code "
                           f"{child.returncode}); it may have run out of memory.")
    kind, *result, caught = answer
    for category, message in caught:
        warnings.warn(message, category, stacklevel=2)
    if kind == "done":
        return result[0]
    error_type, message = result
    try:
        error = error_type(message)
    except TypeError:  # an exception that takes other arguments: its message is what counts
        error = ValueError(message)
    raise error
