"""A time limit for calls that could conceivably hang (no extra pytest plugin needed)."""

import contextlib
import signal
import threading

TIME_LIMIT = 30  # seconds; every guarded call in the suite takes well under one


@contextlib.contextmanager
def time_limit(seconds=TIME_LIMIT):
    """Raise TimeoutError in the main thread if the block runs longer than ``seconds``.

    Uses SIGALRM, so it only guards the main thread on POSIX; elsewhere it is a no-op.
    """
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum, frame):
        raise TimeoutError(f"call did not return within {seconds} s (a hang)")

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
