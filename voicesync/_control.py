"""The `voicesync-control` thread: work the reader must not do itself.

The reader applies state only. What an abort must still do (send the stream's ``end``
frame, run the app's `on_abort` callbacks, e.g. closing an LLM response) is handed to
this thread, in order, so a slow callback or a full outbox never stops reading.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

_local = threading.local()


def bind(control: Control) -> None:
    """Make the calling thread (the reader) hand deferrable work to `control`."""
    _local.control = control


def deferral() -> Callable[[Callable[[], object]], None] | None:
    """On a thread bound with `bind()`: the function that defers work; else None."""
    control: Control | None = getattr(_local, "control", None)
    return control.submit if control is not None else None


class Control:
    """One lazily started thread running submitted callables in order. Any thread may
    submit; `stop()` runs what is queued no longer."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.RLock())
        self._work: collections.deque[Callable[[], object]] = collections.deque()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._busy = False

    def submit(self, fn: Callable[[], object]) -> None:
        with self._cond:
            stopped = self._stopped
            if not stopped:
                self._work.append(fn)
        if stopped:  # after close(): run it here rather than leave a provider stream open
            _run_safely(fn)
            return
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="voicesync-control", daemon=True)
                self._thread.start()
            self._cond.notify()

    def drain(self, timeout: float) -> bool:
        """Wait until everything submitted so far has run; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._work and not self._busy, timeout)

    def stop(self, timeout: float) -> None:
        """Run what is queued for up to `timeout` s, then end the thread. Any thread."""
        on_me = threading.current_thread() is self._thread
        if not on_me:
            self.drain(timeout)
        with self._cond:
            self._stopped = True
            left = list(self._work) if on_me else []  # close() from an on_abort callback
            self._work.clear()
            thread, self._thread = self._thread, None
            self._cond.notify_all()
        for fn in left:
            _run_safely(fn)
        if thread is not None and not on_me:
            thread.join(timeout)

    def restart(self) -> None:
        """Accept work again after `stop()` (a new connect() on the same client)."""
        with self._cond:
            self._stopped = False

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._work and not self._stopped:
                    self._busy = False
                    self._cond.notify_all()
                    self._cond.wait()
                if self._stopped:
                    self._busy = False
                    return
                fn = self._work.popleft()
                self._busy = True
            _run_safely(fn)


def _run_safely(fn: Callable[[], object]) -> None:
    try:
        fn()
    except Exception:
        logger.exception("a deferred abort step failed")
