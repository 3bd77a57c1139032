"""Log lines a hostile or broken peer can trigger: rate-limited, with wire text clipped."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

CLIP = 200  # characters of wire text a log line may carry


def clip(text: str, limit: int = CLIP) -> str:
    """`text` cut to `limit` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


class Throttled:
    """One kind of repeated record: the first is logged at once, then at most one per
    `interval` seconds, carrying the count of those suppressed in between. Any thread."""

    def __init__(self, logger: logging.Logger, interval: float = 5.0) -> None:
        self._logger = logger
        self._interval = interval
        self._lock = threading.Lock()
        self._last = -float("inf")
        self._suppressed = 0

    def warning(self, msg: str, *args: Any) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last < self._interval:
                self._suppressed += 1
                return
            suppressed, self._suppressed, self._last = self._suppressed, 0, now
        if suppressed:
            msg += " (and %d more like it in the last %.0f s)"
            args = (*args, suppressed, self._interval)
        self._logger.warning(msg, *args)
