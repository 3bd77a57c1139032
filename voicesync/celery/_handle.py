"""`Offload`: what `Offloader.offload()` returns for one turn handed to a worker."""

from __future__ import annotations

import threading
import time

from voicesync.reply import ReplyStream


class Offload:
    """One turn handed off (or, with the fallback, answered in this process)."""

    def __init__(self, stream: ReplyStream, *, in_process: bool = False) -> None:
        self.stream = stream
        self.message_id = stream.message_id
        self.in_process = in_process
        self.handed_at = time.monotonic()
        self.started_at: float | None = None  # a worker began it (monotonic clock)
        self.first_chunk_at: float | None = None  # its first chunk was written to the call
        self._done = threading.Event()

    @property
    def done(self) -> bool:
        """True once the reply ended or was aborted."""
        return self._done.is_set()

    @property
    def abort_reason(self) -> str | None:
        """None if the reply ended normally (or is still running), else why it was cut."""
        return self.stream.abort_reason

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the reply ended, or was aborted and its worker told so (a queued task
        then never starts); True if that happened within `timeout`."""
        return self._done.wait(timeout)

    def __repr__(self) -> str:
        state = ("in process" if self.in_process else "queued" if self.started_at is None
                 else "started")
        if self.done:
            state = f"aborted ({self.abort_reason})" if self.abort_reason else "answered"
        return f"<Offload {self.message_id} {state}>"
