"""Test helpers: deadline-bound waits, the canary key, and the SDK's live threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

CANARY_KEY = "pk_canary_9f3b2c7d1e5a4b6c"


def until(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    event = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        event.wait(0.005)


def sdk_threads() -> list[str]:
    """voicesync SDK threads alive now (the simulator's own threads excluded)."""
    return [t.name for t in threading.enumerate()
            if t.name.startswith("voicesync-") and not t.name.startswith("voicesync-sim")]
