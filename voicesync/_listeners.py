"""Handler tables and `on()`/`off()`: names and signatures are checked where they are passed.

Tables are thread-safe: add and remove under a lock, read a snapshot without one.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any, ClassVar, Literal, TypeVar, overload

from voicesync.errors import ConfigurationError
from voicesync.events import AGENT_EVENTS, CLIENT_EVENTS, EVENT_NAMES, HANDLER_ARGS, EventName

Handler = Callable[..., Any]
H = TypeVar("H", bound=Handler)
_EMPTY: tuple[Handler, ...] = ()
Scope = Literal["client", "agent", "call"]
_OUT_OF_SCOPE: dict[str, frozenset[str]] = {
    "client": frozenset(),
    "agent": CLIENT_EVENTS,
    "call": CLIENT_EVENTS | AGENT_EVENTS,
}
_WHERE = {"client": "client.on()", "agent": "agent.on() or client.on()"}


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


def check_event_name(name: str, scope: Scope) -> None:
    """Raise ConfigurationError unless `name` is an event `scope`'s `on()` can hear."""
    if not isinstance(name, str):
        raise ConfigurationError(f"an event name is a string, not {name!r}")
    if name not in EVENT_NAMES:
        import difflib  # only for this message: not loaded with voicesync

        close = difflib.get_close_matches(name, sorted(EVENT_NAMES), n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise ConfigurationError(
            f"unknown event {name!r}: {hint}The names are listed in voicesync.EventName; "
            f"for an event voicesync does not know yet, pass strict=False: "
            f"on({name!r}, fn, strict=False)")
    if name in _OUT_OF_SCOPE[scope]:
        owner = "client" if name in CLIENT_EVENTS else "agent"
        raise ConfigurationError(
            f"{name!r} is an event of the {owner}, never of a single {scope}: register it "
            f"with {_WHERE[owner]}")


def check_handler(name: str, fn: Any) -> None:
    """Raise ConfigurationError when `fn` cannot take the arguments `name` is called with."""
    if not callable(fn):
        raise ConfigurationError(f"the handler for {name!r} is not callable: {fn!r}")
    params = HANDLER_ARGS.get(name)
    if params is None:
        return
    check_signature(fn, params, f"a handler for {name!r}")


def check_signature(fn: Any, params: tuple[str, ...], what: str) -> None:
    """Raise ConfigurationError unless `fn(*params)` binds; unknowable signatures pass."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins and some C callables: nothing to check
        return
    try:
        signature.bind(*params)
    except TypeError:
        label = getattr(fn, "__qualname__", None) or repr(fn)
        raise ConfigurationError(
            f"{what} is called with ({', '.join(params)}), but {label}{signature} cannot "
            f"take that: give it the parameters ({', '.join(params)})") from None


class Subscribable:
    """`on()`/`off()` for the client, an agent and a call (each with its own scope)."""

    _scope: ClassVar[Scope]
    _listeners: Listeners

    @overload
    def on(self, name: EventName, fn: None = None, *, strict: bool = True
           ) -> Callable[[H], H]: ...

    @overload
    def on(self, name: EventName, fn: H, *, strict: bool = True) -> H: ...

    @overload
    def on(self, name: str, fn: None = None, *, strict: Literal[False]) -> Callable[[H], H]: ...

    @overload
    def on(self, name: str, fn: H, *, strict: Literal[False]) -> H: ...

    def on(self, name: str, fn: Handler | None = None, *, strict: bool = True) -> Any:
        """Register `fn` for event `name` and return it; without `fn`, a decorator.

        `name` must be a known event (`voicesync.EventName`) that this object hears,
        else ConfigurationError names the closest ones. ``strict=False`` accepts any
        name, for events the platform sends that voicesync does not know yet. Handlers
        run on voicesync handler threads, one call's in wire order: call events get
        ``(event, call)``, turns ``(turn, call)``, ``call.started`` ``(call)``,
        ``call.ended`` ``(call, reason)``, ``call.ringing`` ``(ringing)``, other agent
        events ``(event)``; client events: ``connected()``, ``disconnected(reason)``,
        ``reconnecting(attempt, delay)``, ``error(exc)``. Any thread.
        """
        if strict:
            check_event_name(name, self._scope)

        def add(handler: H) -> H:
            check_handler(name, handler)
            self._listeners.add(name, handler)
            return handler

        return add if fn is None else add(fn)

    def off(self, name: str, fn: Handler | None = None) -> None:
        """Remove a handler (or every handler of `name`). Any thread."""
        self._listeners.remove(name, fn)


def handlers_of(name: str, *owners: Subscribable) -> tuple[Handler, ...]:
    """The handlers of `name` on each owner (a call, its agent, the client), in order."""
    found = _EMPTY
    for owner in owners:
        more = owner._listeners.get(name)
        if more:  # most events have no handler at most levels: no tuple is built
            found = found + more if found else more
    return found
