"""What the provider helpers share: closing a provider stream on abort, errors, the tool loop."""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from voicesync.errors import VoiceSyncError
from voicesync.tools import Tool, ToolError, ToolResult, run_tool_calls

logger = logging.getLogger("voicesync.llm")

MAX_TOOL_ROUNDS = 8


class ProviderError(VoiceSyncError):
    """The model provider failed mid-reply; the reply stream was ended with what was said.

    The provider's own exception is the ``__cause__``.
    """

    def __init__(self, message: str, *, provider: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.status_code = status_code


class ReplyStreamLike(Protocol):
    """The part of `voicesync.ReplyStream` the helpers use."""

    @property
    def aborted(self) -> threading.Event: ...
    def write(self, text: str) -> bool: ...
    def end(self) -> bool: ...
    def on_abort(self, fn: Callable[[Any], None]) -> Callable[[], object]: ...


def close_provider_stream(provider_stream: object) -> None:
    """Close a provider stream at once, from any thread, even while another thread reads it.

    Closing a socket does not wake a thread blocked in recv() on it and sends nothing to the
    peer; shutdown() does both, so the server sees the disconnect and the reader wakes up.
    """
    response = getattr(provider_stream, "response", None)
    extensions = getattr(response, "extensions", None) or {}
    network_stream = extensions.get("network_stream") if isinstance(extensions, dict) else None
    sock = None
    with contextlib.suppress(Exception):
        sock = network_stream.get_extra_info("socket") if network_stream is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    # The reading thread may close the same response as it wakes; either order is fine.
    for closeable in (provider_stream, response):
        close = getattr(closeable, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()
    logger.debug("closed the provider stream (%s)",
                 "socket shut down" if sock is not None else "no socket found")


class _Closer:
    """Closes whichever provider stream is current when the reply stream aborts."""

    def __init__(self, stream: ReplyStreamLike) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._current: object = None
        self._aborted = False
        self._remove = stream.on_abort(self._on_abort)

    def _on_abort(self, _stream: object) -> None:
        with self._lock:
            self._aborted = True
            current = self._current
        if current is not None:
            close_provider_stream(current)

    def attach(self, provider_stream: object) -> None:
        with self._lock:
            self._current = provider_stream
            aborted = self._aborted or self._stream.aborted.is_set()
        if aborted:
            close_provider_stream(provider_stream)

    def detach(self) -> None:
        with self._lock:
            current, self._current = self._current, None
        close = getattr(current, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()

    def remove(self) -> None:
        self._remove()


def provider_error(provider: str, exc: BaseException) -> ProviderError:
    status = getattr(exc, "status_code", None)
    return ProviderError(
        f"The {provider} stream failed ({type(exc).__name__}: {exc}); the reply was ended "
        "with what had been said.", provider=provider,
        status_code=status if isinstance(status, int) else None)


def request_stream(provider: str, stream: ReplyStreamLike,
                   create: Callable[[], object]) -> object | None:
    """Make the streaming request unless the reply is already aborted (then None).

    A failed request ends the reply and raises ProviderError.
    """
    if stream.aborted.is_set():
        stream.end()
        return None
    try:
        return create()
    except Exception as exc:
        stream.end()
        raise provider_error(provider, exc) from exc


def events(provider: str, stream: ReplyStreamLike, source: Iterable[Any]) -> Iterator[Any]:
    """Iterate a provider stream; stop quietly once aborted, else wrap its errors."""
    iterator = iter(source)
    while not stream.aborted.is_set():
        try:
            event = next(iterator)
        except StopIteration:
            return
        except Exception as exc:
            if stream.aborted.is_set():
                logger.debug("%s stream ended by the abort: %r", provider, exc)
                return
            raise provider_error(provider, exc) from exc
        yield event


@dataclass
class Round:
    """What one model response produced."""

    text: str = ""
    calls: dict[int, list[str]] = field(default_factory=dict)  # index -> [id, name, args]
    extra: list[Any] = field(default_factory=list)  # provider items needed for the follow-up

    def tool_calls(self) -> list[tuple[str, str, str]]:
        return [(c[0], c[1], c[2]) for _, c in sorted(self.calls.items())]


class Writer:
    """Writes deltas to the reply stream and keeps what got through."""

    def __init__(self, stream: ReplyStreamLike) -> None:
        self.stream = stream
        self.parts: list[str] = []

    def __call__(self, text: str | None, round_: Round) -> None:
        if not text or self.stream.aborted.is_set():
            return
        if not round_.text and self.parts and not (self.parts[-1][-1:].isspace()
                                                   or text[:1].isspace()):
            text = " " + text  # a new round after a tool call must not glue sentences
        if self.stream.write(text):
            self.parts.append(text)
            round_.text += text


Consume = Callable[[Iterator[Any], Writer], Round]
FollowUp = Callable[[Round, list[ToolResult]], object]


def tool_loop(provider: str, stream: ReplyStreamLike, first: object, consume: Consume,
              follow_up: FollowUp | None, *, tools: Sequence[Tool[..., Any]] | None,
              on_tool: Callable[[ToolResult], object] | None, max_tool_rounds: int,
              call: object = None) -> str:
    """Stream `first` into `stream`; while the model asks for tools, run them and continue.

    A round's tools run concurrently and get `call`; a failing one is reported through the
    call's client. When every tool of a round is ``no_followup`` the reply ends there.
    Always ends `stream`. Returns the text written over all rounds.
    """
    writer = Writer(stream)
    closer = _Closer(stream)
    source = first
    try:
        for number in itertools.count(1):
            closer.attach(source)
            try:
                round_ = consume(events(provider, stream, _iterable(source)), writer)
            finally:
                closer.detach()
            calls = round_.tool_calls()
            if stream.aborted.is_set() or not calls:
                break
            if not tools or follow_up is None:
                logger.warning("the model asked for tools %s, but no tools (or no client and "
                               "request) were given; ending the reply", [c[1] for c in calls])
                break
            if number > max_tool_rounds:
                logger.warning("the model asked for tools after %d rounds; ending the reply",
                               max_tool_rounds)
                break
            results = run_tool_calls(tools, calls, call=call, on_error=_reporter(call))
            for result in results:
                if on_tool is not None:
                    on_tool(result)
            if stream.aborted.is_set() or all(r.no_followup for r in results):
                break
            try:
                source = follow_up(round_, results)
            except Exception as exc:
                if stream.aborted.is_set():
                    break
                raise provider_error(provider, exc) from exc
    finally:
        closer.remove()
        stream.end()
    return "".join(writer.parts)


def _reporter(call: object) -> Callable[[ToolError], object] | None:
    """Where a failing tool is reported: the call's client's ``error`` event, if there is one."""
    uplink = getattr(call, "_uplink", None)  # a voicesync.Call's port to its client
    report = getattr(uplink, "report", None)
    return report if callable(report) else None


def _iterable(source: object) -> Iterable[Any]:
    # A finished (non-streaming) response is a pydantic model, which is iterable too.
    if not isinstance(source, Iterable) or hasattr(source, "model_dump"):
        raise TypeError(f"Expected a streaming response (stream=True), got {type(source)!r}.")
    return source
