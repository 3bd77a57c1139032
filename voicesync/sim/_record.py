"""The timestamped record of every frame the simulator sent or received, and waits on it."""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Direction = Literal["in", "out"]


@dataclass(frozen=True)
class Frame:
    """One WebSocket text frame as it crossed the wire.

    `direction` is "in" (client -> simulator) or "out" (simulator -> client); `data` is the
    parsed JSON object, or None when the text was not a JSON object (then see `raw`).
    """

    ts_ns: int
    direction: Direction
    conn_id: int
    data: dict[str, Any] | None
    raw: str | None = None

    @property
    def event(self) -> str | None:
        value = self.data.get("event") if self.data is not None else None
        return value if isinstance(value, str) else None

    @property
    def call_id(self) -> str | None:
        if self.data is None:
            return None
        value = self.data.get("call_id", self.data.get("session_id"))
        return value if isinstance(value, str) else None

    def get(self, key: str, default: Any = None) -> Any:
        return default if self.data is None else self.data.get(key, default)


FramePredicate = Callable[[Frame], bool]


class FrameLog:
    """Append-only (bounded) frame record with condition-variable waits, safe across threads.

    Positions are absolute: `mark()` returns the position of the next frame, and stays
    meaningful even after old frames fall off the front of a bounded log.
    """

    def __init__(self, limit: int | None = 100_000, *, enabled: bool = True,
                 now_ns: Callable[[], int] = time.monotonic_ns) -> None:
        self.enabled = enabled
        self._now_ns = now_ns  # the simulator clock's: virtual time in virtual mode
        self._frames: deque[Frame] = deque(maxlen=limit)
        self._base = 0
        self._cond = threading.Condition()

    def now_ns(self) -> int:
        """The record's clock, for a frame stamped now and added later (`add(ts_ns=...)`)."""
        return self._now_ns()

    def add(self, direction: Direction, conn_id: int, data: dict[str, Any] | None,
            raw: str | None = None, *, ts_ns: int | None = None) -> None:
        if not self.enabled:
            return
        frame = Frame(self._now_ns() if ts_ns is None else ts_ns, direction, conn_id, data, raw)
        with self._cond:
            if self._frames.maxlen is not None and len(self._frames) == self._frames.maxlen:
                self._base += 1
            self._frames.append(frame)
            self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return self._base + len(self._frames)

    def snapshot(self, start: int = 0) -> list[Frame]:
        with self._cond:
            skip = max(0, start - self._base)
            return list(self._frames)[skip:]

    def clear(self) -> None:
        with self._cond:
            self._base += len(self._frames)
            self._frames.clear()

    def wait_for(self, pred: FramePredicate, timeout: float, start: int = 0) -> Frame:
        """The first frame at or after position `start` matching `pred`.

        Raises:
            TimeoutError: no such frame arrived within `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        pos = start
        with self._cond:
            while True:
                skip = max(0, pos - self._base)
                for frame in itertools.islice(self._frames, skip, None):
                    if pred(frame):
                        return frame
                pos = self._base + len(self._frames)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no matching frame within {timeout:.3g} s")
                self._cond.wait(remaining)


def match(event: str | None = None, *, direction: Direction | None = None,
          call_id: str | None = None, conn_id: int | None = None,
          **fields: Any) -> FramePredicate:
    """A predicate for `wait_frame`: every given field must equal the frame's value."""

    def pred(frame: Frame) -> bool:
        if direction is not None and frame.direction != direction:
            return False
        if event is not None and frame.event != event:
            return False
        if call_id is not None and frame.call_id != call_id:
            return False
        if conn_id is not None and frame.conn_id != conn_id:
            return False
        return all(frame.get(key, _MISSING) == value for key, value in fields.items())

    return pred


_MISSING = object()
