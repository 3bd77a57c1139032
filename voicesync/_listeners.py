"""Thread-safe handler tables: add and remove under a lock, read a snapshot without one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

Handler = Callable[..., Any]
_EMPTY: tuple[Handler, ...] = ()


class Listeners:
    """Handlers by event name. Reads are lock-free: each entry is an immutable tuple."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._table: dict[str, tuple[Handler, ...]] = {}

    def add(self, name: str, fn: Handler) -> None:
        with self._lock:
            self._table[name] = (*self._table.get(name, _EMPTY), fn)

    def remove(self, name: str, fn: Handler | None = None) -> None:
        with self._lock:
            if fn is None:
                self._table.pop(name, None)
                return
            kept = tuple(h for h in self._table.get(name, _EMPTY) if h != fn)
            if kept:
                self._table[name] = kept
            else:
                self._table.pop(name, None)

    def get(self, name: str) -> tuple[Handler, ...]:
        return self._table.get(name, _EMPTY)


def register(
    listeners: Listeners, name: str, fn: Handler | None,
) -> Any:
    """`on(name, fn)` registers and returns fn; `on(name)` returns a decorator."""
    if fn is not None:
        listeners.add(name, fn)
        return fn

    def decorator(handler: Handler) -> Handler:
        listeners.add(name, handler)
        return handler

    return decorator
