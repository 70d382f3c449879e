"""SIGINT and SIGTERM end a command through Python's exception machinery, so that every
``finally`` removes its temporaries and no output is left half-replaced.

Python turns SIGINT into ``KeyboardInterrupt`` already; SIGTERM (what ``timeout``, ``kill`` and
batch schedulers send) kills the process outright unless a handler is installed. ``installed``
makes it raise ``Terminated``; ``deferred`` holds both signals back while a few renames that
must happen together are under way, and delivers them right after.
"""

import signal
from collections.abc import Iterator
from contextlib import contextmanager

_HELD = (signal.SIGINT, signal.SIGTERM)


class Terminated(BaseException):
    """SIGTERM arrived: unwind like ``KeyboardInterrupt`` (cleanup runs), then exit 143."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(f"terminated by signal {signum}")
        self.signum = signum


def _raise_terminated(signum: int, _frame: object) -> None:
    raise Terminated(signum)


@contextmanager
def installed() -> Iterator[None]:
    """SIGTERM raises ``Terminated`` inside the block (from the main thread; elsewhere a no-op);
    the previous handler is back afterwards, so a program that calls the command line in-process
    keeps its own."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back inside the block; one that arrived meanwhile is delivered
    (and raises) when the block ends."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
