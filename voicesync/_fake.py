"""FakeTransport: an in-memory platform connection for fast tests of the connection core."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from voicesync.errors import ConnectionClosedError, ConnectTimeout

Frame = dict[str, Any]


class FakeTransport:
    """Stands in for the WebSocket of one `Client`; every (re)dial reopens it.

    By default it answers like the platform: `connected` after the client's first frame
    and `agent.created` for each `agent.create`. The test pushes server frames with
    `push()`, drops the connection with `drop()`, and reads what the client sent from
    `sent` (decoded frames, in order) or waits for one with `wait_sent()`. Any thread.

        fake = FakeTransport()
        client = fake.attach(voicesync.Client(api_key="test", url="ws://127.0.0.1:9"))
        client.connect(timeout=1)
    """

    def __init__(self, *, auto_answer: bool = True) -> None:
        self.auto_answer = auto_answer
        self.refuse: Exception | None = None  # raised by the next open()s while set
        self.opens = 0
        self.sent: list[Frame] = []
        self._cond = threading.Condition()
        self._inbox: list[str] = []
        self._closed: ConnectionClosedError | None = None
        self._timeout: float | None = None

    def attach(self, client: Any) -> Any:
        """Make `client` dial this fake instead of a socket; returns the client."""
        client._transport_factory = lambda **_: self
        return client

    # ------------------------------------------------------------------ the test's side

    def push(self, frame: Mapping[str, Any] | str) -> None:
        """Deliver a server frame (a mapping, or raw text) to the client's reader."""
        text = frame if isinstance(frame, str) else json.dumps(frame)
        with self._cond:
            self._inbox.append(text)
            self._cond.notify_all()

    def drop(self, code: int = 1006, reason: str = "connection_lost") -> None:
        """End the current connection as if the server closed it with `code`."""
        with self._cond:
            self._closed = ConnectionClosedError(
                f"the server closed the connection ({code} {reason})", code=code, reason=reason)
            self._cond.notify_all()

    def wait_sent(self, match: Callable[[Frame], bool], timeout: float = 2.0) -> Frame:
        """The first frame the client sent that `match`es, waiting up to `timeout` s."""
        found: list[Frame] = []

        def seen() -> bool:
            found[:] = [f for f in self.sent if match(f)][:1]
            return bool(found)

        with self._cond:
            if not self._cond.wait_for(seen, timeout):
                raise AssertionError(f"no matching frame sent within {timeout:g} s")
        return found[0]

    # ------------------------------------------------------------------ the port

    def open(self, url: str, timeout: float) -> None:
        if self.refuse is not None:
            raise self.refuse
        with self._cond:
            self.opens += 1
            self._inbox.clear()
            self._closed = None

    def greet(self, text: str) -> None:
        self.send(text)

    def set_timeout(self, seconds: float | None) -> None:
        self._timeout = seconds

    def recv(self) -> str | None:
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        with self._cond:
            while not self._inbox and self._closed is None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise ConnectTimeout("no answer from the server in time")
                self._cond.wait(left)
            if self._inbox:
                return self._inbox.pop(0)
            assert self._closed is not None
            raise self._closed

    def send(self, text: str) -> bool:
        frame = json.loads(text)
        with self._cond:
            if self._closed is not None:
                raise ConnectionClosedError("cannot send: closed", reason=self._closed.reason)
            self.sent.append(frame)
            self._cond.notify_all()
        if self.auto_answer:
            for reply in _answers(frame):
                self.push(reply)
        return True

    def stalled(self, now: float, since: float) -> bool:
        return False

    def shutdown(self) -> None:
        with self._cond:
            if self._closed is None:
                self._closed = ConnectionClosedError(
                    "connection lost: shut down", code=1006, reason="connection_lost")
            self._cond.notify_all()

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.shutdown()

    def release(self) -> None:
        """Nothing to free."""


def _answers(frame: Frame) -> list[Frame]:
    event = frame.get("event")
    if event == "connect":
        return [{"event": "connected", "org_id": "org_fake"}]
    if event == "agent.create":
        return [{"event": "agent.created", "agent_id": frame.get("agent_id")}]
    if event == "ping":
        return [{"event": "pong"}]
    return []
