"""Helpers for the llm tests: a deadline wait and a recording reply stream."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


def until(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait for `predicate` to hold, failing the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.002)


class RecordingStream:
    """The documented ReplyStream surface, recording what a helper does with it."""

    def __init__(self) -> None:
        self.aborted = threading.Event()
        self.lock = threading.Lock()
        self.parts: list[str] = []
        self.writes_after_abort = 0
        self.end_calls = 0
        self.callbacks: list[Callable[[Any], None]] = []
        self.abort_thread: str | None = None
        self.callback_threads: list[str] = []
        self.wrote = threading.Condition(self.lock)

    @property
    def text(self) -> str:
        with self.lock:
            return "".join(self.parts)

    @property
    def ended(self) -> bool:
        return self.end_calls > 0 or self.aborted.is_set()

    def write(self, text: str) -> bool:
        with self.lock:
            if self.aborted.is_set():
                self.writes_after_abort += 1
                return False
            assert self.end_calls == 0, "write after end"
            self.parts.append(text)
            self.wrote.notify_all()
            return True

    def end(self) -> bool:
        with self.lock:
            self.end_calls += 1
            return self.end_calls == 1 and not self.aborted.is_set()

    def abort(self, reason: str = "app") -> None:
        with self.lock:
            if self.aborted.is_set():
                return
            self.aborted.set()
            callbacks, self.callbacks = self.callbacks, []
        self.abort_thread = threading.current_thread().name
        for callback in callbacks:
            callback(self)
            self.callback_threads.append(threading.current_thread().name)

    def on_abort(self, fn: Callable[[Any], None]) -> Callable[[], None]:
        with self.lock:
            if not self.aborted.is_set():
                self.callbacks.append(fn)
                return lambda: self.callbacks.remove(fn) if fn in self.callbacks else None
        fn(self)
        return lambda: None

    def wait_text(self, text: str, timeout: float = 5.0) -> None:
        with self.lock:
            if not self.wrote.wait_for(lambda: "".join(self.parts) == text, timeout):
                raise AssertionError(f"stream holds {''.join(self.parts)!r}, not {text!r}")
