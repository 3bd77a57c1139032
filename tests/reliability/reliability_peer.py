"""A scripted platform peer (paho/NATS style): a real WebSocket server the test drives.

It answers the handshake, registrations and pings by itself and records every frame
the SDK sends; everything else (calls, turns, malformed frames, closes) is sent by the
test, so each scenario is deterministic. It is deliberately dumb: no speech, no pacing.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any

from typing_extensions import Self
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

Frame = dict[str, Any]
AgentReply = Callable[[Frame, int], list[Frame]]


@dataclass(frozen=True)
class Rx:
    """One frame the SDK sent: on which connection (1-based), when (monotonic), what."""

    conn: int
    at: float
    frame: Frame


def created(frame: Frame, attempt: int) -> list[Frame]:
    """The default answer to agent.create."""
    return [{"event": "agent.created", "agent_id": frame.get("agent_id")}]


class ScriptedPeer:
    """A loopback WebSocket server speaking the platform side of the handshake.

    on_connect: "ok" (send `connected`), "invalid_key" (an INVALID_KEY error frame),
    "close_1008" (close with 1008), "silent" (answer nothing). `http_status` refuses
    the upgrade itself (e.g. 401). `agent_reply(frame, attempt)` answers agent.create;
    `attempt` counts that agent's creates over the peer's life, from 1.
    """

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None,
                 http_status: int | None = None) -> None:
        self.on_connect = "ok"
        self.agent_reply: AgentReply = created
        self.http_status = http_status
        self.answer_pings = True
        #: (status, JSON body) for plain HTTP requests off /client (the REST calls)
        self.rest_reply: tuple[int, dict[str, Any]] | None = None
        self._ssl = ssl_context
        self._cond = threading.Condition()
        self._conns: list[ServerConnection] = []
        self._creates: dict[str, int] = {}
        self.received: list[Rx] = []
        self.close_codes: list[int | None] = []
        self.handshakes = 0
        self.requests: list[tuple[str, list[tuple[str, str]]]] = []  # (path, headers)
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        self._server = serve(
            self._handle, "127.0.0.1", 0, ssl=self._ssl, compression=None,
            process_request=self._process_request, ping_interval=None, max_size=None,
            close_timeout=1.0)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="reliability-peer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(5.0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None
        host, port = self._server.socket.getsockname()[:2]
        return host, port

    @property
    def url(self) -> str:
        scheme = "wss" if self._ssl is not None else "ws"
        return f"{scheme}://127.0.0.1:{self.address[1]}"

    # ------------------------------------------------------------------ driving

    @property
    def connections(self) -> int:
        """How many WebSocket connections were opened in total."""
        with self._cond:
            return len(self._conns)

    def wait_connections(self, count: int, timeout: float) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._conns) >= count, timeout):
                raise AssertionError(f"expected {count} connections, saw {len(self._conns)}")

    def _current(self) -> ServerConnection:
        with self._cond:
            if not self._conns:
                raise AssertionError("no connection yet")
            return self._conns[-1]

    def send(self, frame: Frame | str | bytes) -> None:
        """Send to the newest connection: a frame, raw text, or raw bytes as a text frame."""
        conn = self._current()
        if isinstance(frame, dict):
            conn.send(json.dumps(frame))
        elif isinstance(frame, bytes):
            conn.send(frame, text=True)  # not validated: lets a test send invalid UTF-8
        else:
            conn.send(frame)

    def send_fragments(self, parts: list[str]) -> None:
        """One text message split into WebSocket fragments (continuation frames)."""
        self._current().send(iter(parts))

    def send_binary(self, data: bytes) -> None:
        self._current().send(data)

    def send_many(self, frames: list[Frame]) -> None:
        conn = self._current()
        for frame in frames:
            conn.send(json.dumps(frame))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the newest connection with a close frame."""
        self._current().close(code, reason)

    def start_call(self, agent_id: str, call_id: str) -> None:
        self.send({"event": "call.started", "agent_id": agent_id, "call_id": call_id,
                   "session_id": call_id, "from": "+15550001111", "to": "+15550002222",
                   "direction": "inbound", "transport": "phone"})

    def turn(self, agent_id: str, call_id: str, message_id: str, text: str = "hello") -> None:
        """One user turn: user.message then turn.end."""
        base = {"agent_id": agent_id, "call_id": call_id}
        self.send_many([
            {"event": "user.message", **base, "message_id": message_id, "text": text},
            {"event": "turn.end", **base, "message_id": message_id, "text": text, "turn_id": 1},
        ])

    # ------------------------------------------------------------------ observing

    def frames(self, pred: Callable[[Rx], bool] = lambda rx: True) -> list[Rx]:
        with self._cond:
            return [rx for rx in self.received if pred(rx)]

    def wait_frame(self, pred: Callable[[Rx], bool], timeout: float, what: str = "frame") -> Rx:
        """The first recorded frame matching `pred`, waiting up to `timeout` seconds."""
        found: list[Rx] = []

        def match() -> bool:
            found[:] = [rx for rx in self.received if pred(rx)][:1]
            return bool(found)

        with self._cond:
            if not self._cond.wait_for(match, timeout):
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        return found[0]

    def wait_closed(self, count: int, timeout: float) -> list[int | None]:
        """Wait until `count` connections have ended; the close codes the SDK sent."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.close_codes) >= count, timeout):
                raise AssertionError(f"expected {count} closed connections")
            return list(self.close_codes)

    # ------------------------------------------------------------------ server side

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        with self._cond:
            self.requests.append((request.path, list(request.headers.raw_items())))
        if self.rest_reply is not None and not request.path.startswith("/client"):
            status, body = self.rest_reply
            return conn.respond(HTTPStatus(status), json.dumps(body))
        if self.http_status is not None:
            status = HTTPStatus(self.http_status)
            return conn.respond(status, f"{status.phrase}\n")
        return None

    def _handle(self, conn: ServerConnection) -> None:
        with self._cond:
            self._conns.append(conn)
            index = len(self._conns)
            self._cond.notify_all()
        code: int | None = None
        try:
            while True:
                text = conn.recv()
                frame = json.loads(text)
                with self._cond:
                    self.received.append(Rx(index, time.monotonic(), frame))
                    self._cond.notify_all()
                self._answer(conn, frame)
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
        finally:
            with self._cond:
                self.close_codes.append(code)
                self._cond.notify_all()

    def _answer(self, conn: ServerConnection, frame: Frame) -> None:
        event = frame.get("event")
        with contextlib.suppress(ConnectionClosed):
            if event == "connect":
                with self._cond:
                    self.handshakes += 1
                if self.on_connect == "ok":
                    conn.send(json.dumps({"event": "connected", "org_id": "org_test"}))
                elif self.on_connect == "invalid_key":
                    conn.send(json.dumps({"event": "error", "code": "INVALID_KEY",
                                          "error": "Invalid API key"}))
                elif self.on_connect == "close_1008":
                    conn.close(1008, "invalid api key")
            elif event == "agent.create":
                agent_id = str(frame.get("agent_id"))
                with self._cond:
                    attempt = self._creates[agent_id] = self._creates.get(agent_id, 0) + 1
                for reply in self.agent_reply(frame, attempt):
                    conn.send(json.dumps(reply))
            elif event == "channel.add":
                conn.send(json.dumps({"event": "channel.added", "agent_id": frame.get("agent_id"),
                                      "type": frame.get("type"), "ref": frame.get("ref")}))
            elif event == "ping" and self.answer_pings:
                conn.send(json.dumps({"event": "pong", "timestamp": time.time()}))
