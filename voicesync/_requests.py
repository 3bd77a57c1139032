"""Request/acknowledgement pairing for history and prompt requests (docs/protocol.md §2.8)."""

from __future__ import annotations

import itertools
import random
import string
import threading
from collections.abc import Callable, Mapping
from typing import Any

from voicesync import _codec
from voicesync.errors import ConnectionClosedError, RequestRejectedError, RequestTimeout

_ALPHABET = string.ascii_lowercase + string.digits
_RANDOM = random.SystemRandom()  # what `secrets` uses, without its hmac/base64 imports


class _Pending:
    __slots__ = ("call_id", "done", "reply", "request", "response")

    def __init__(self, request: str, response: str, call_id: str) -> None:
        self.request = request
        self.response = response
        self.call_id = call_id
        self.done = threading.Event()
        self.reply: Mapping[str, Any] | None = None


class Requests:
    """Outstanding requests, matched by echoed `request_id`, else by response name in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._counter = itertools.count(1)

    def new_id(self) -> str:
        n = next(self._counter)
        suffix = "".join(_RANDOM.choice(_ALPHABET) for _ in range(6))
        return f"rq_{_base36(n)}_{suffix}"

    def open(self, request_id: str, request: str, response: str, call_id: str) -> _Pending:
        pending = _Pending(request, response, call_id)
        with self._lock:
            self._pending[request_id] = pending
        return pending

    def ask(self, call_id: str, send: Callable[[Mapping[str, Any]], bool], event: str,
            response: str, *, timeout: float, payload: Mapping[str, Any],
            link_state: Callable[[], str]) -> Mapping[str, Any]:
        """Send `event` for a call and wait for its `response` frame (same request_id)."""
        request_id = self.new_id()
        pending = self.open(request_id, event, response, call_id)
        if not send({"event": event, "call_id": call_id, "request_id": request_id, **payload}):
            pending.done.set()
        return self.wait(request_id, pending, timeout, link_state)

    def wait(self, request_id: str, pending: _Pending, timeout: float,
             link_state: Callable[[], str]) -> Mapping[str, Any]:
        try:
            if not pending.done.wait(timeout):
                raise RequestTimeout(
                    f"timed out after {timeout:g} s waiting for {pending.response!r} in reply "
                    f"to {pending.request!r} (request_id {request_id}) on call "
                    f"{pending.call_id}; last seen: {link_state()}, and no reply to this "
                    "request")
        finally:
            with self._lock:
                self._pending.pop(request_id, None)
        reply = pending.reply
        if reply is None:
            raise ConnectionClosedError(
                f"{pending.request!r} on call {pending.call_id} got no answer: the connection "
                "was lost")
        if reply.get("error"):
            raise RequestRejectedError(
                f"{pending.request!r} was rejected by the server on call {pending.call_id}: "
                f"{reply.get('error')}", code="REQUEST_REJECTED",
                server_message=str(reply.get("error")))
        return reply

    def resolve(self, frame: Mapping[str, Any]) -> bool:
        """Settle the request this acknowledgement answers (reader thread)."""
        request_id = _codec.text_field(frame, "request_id")
        call_id = _codec.call_id_of(frame)
        with self._lock:
            pending = self._pending.get(request_id) if request_id else None
            if pending is None:
                pending = next((p for p in self._pending.values()
                                if p.response == frame.get("event") and p.call_id == call_id
                                and not p.done.is_set()), None)
            if pending is None or pending.call_id != call_id:
                return False
            pending.reply = frame
        pending.done.set()
        return True

    def fail_all(self) -> None:
        """The connection dropped: wake every waiter (they raise ConnectionClosedError)."""
        with self._lock:
            waiting = list(self._pending.values())
        for pending in waiting:
            pending.done.set()


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out
