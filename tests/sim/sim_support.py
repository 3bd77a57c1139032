"""A plain WebSocket client for the simulator's own suite.

The client is deliberately not voicesync: websocket-client plus a reader thread, so the
SDK and the simulator check each other instead of sharing mistakes.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import websocket

Frame = dict[str, Any]


class WsClient:
    """A bare protocol client: frames in, frames out, and waits on what arrived."""

    def __init__(self, url: str, *, path: str = "/client") -> None:
        self.ws = websocket.create_connection(url + path, timeout=5)
        self.frames: list[Frame] = []
        self.raw: list[str] = []
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed = threading.Event()
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="test-ws-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            while True:
                opcode, data = self.ws.recv_data(control_frame=True)
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    if len(data) >= 2:
                        self.close_code = int.from_bytes(data[:2], "big")
                        self.close_reason = data[2:].decode("utf-8", "replace")
                    # websocket-client answered the close frame; now release the TCP
                    # socket, as a well-behaved client does, so the server is not kept waiting.
                    with contextlib.suppress(Exception):
                        self.ws.shutdown()
                    break
                if opcode != websocket.ABNF.OPCODE_TEXT:
                    continue
                text = data.decode()
                try:
                    frame = json.loads(text)
                except ValueError:
                    frame = None
                with self._cond:
                    self.raw.append(text)
                    if isinstance(frame, dict):
                        self.frames.append(frame)
                    self._cond.notify_all()
        except Exception:
            pass
        finally:
            self.closed.set()
            with self._cond:
                self._cond.notify_all()

    def send(self, frame: Frame | str) -> None:
        self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    def wait(self, pred: Callable[[Frame], bool], timeout: float = 5.0, start: int = 0) -> Frame:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for frame in self.frames[start:]:
                    if pred(frame):
                        return frame
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    events = [f.get("event") for f in self.frames[-30:]]
                    raise TimeoutError(f"no matching frame; last events: {events}")
                self._cond.wait(remaining)

    def wait_raw(self, text: str, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while text not in self.raw:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no raw frame {text!r}")
                self._cond.wait(remaining)

    def expect(self, event: str, timeout: float = 5.0, start: int = 0, **fields: Any) -> Frame:
        return self.wait(lambda f: f.get("event") == event
                         and all(f.get(k) == v for k, v in fields.items()), timeout, start)

    def mark(self) -> int:
        with self._cond:
            return len(self.frames)

    def events(self, call_id: str | None = None, start: int = 0) -> list[Frame]:
        with self._cond:
            return [f for f in self.frames[start:]
                    if call_id is None or f.get("call_id") == call_id]

    def connect(self, key: str = "test-key") -> Frame:
        self.send({"event": "connect", "api_key": key})
        return self.expect("connected")

    def register(self, agent_id: str, **config: Any) -> str:
        mark = self.mark()
        self.send({"event": "agent.create", "agent_id": agent_id, **config})
        return str(self.wait(lambda f: f.get("event") in ("agent.created", "error"),
                             start=mark).get("agent_id"))

    def reply(self, call_id: str, text: str, in_reply_to: str = "",
              message_id: str | None = None) -> str:
        message_id = message_id or f"msg_{time.monotonic_ns()}"
        self.send({"event": "bot.reply", "call_id": call_id, "message_id": message_id,
                   "text": text, "in_reply_to": in_reply_to})
        return message_id

    def stream(self, call_id: str, message_id: str, action: str, **fields: Any) -> None:
        self.send({"event": "bot.reply.stream", "call_id": call_id, "message_id": message_id,
                   "action": action, **fields})

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()
        self._reader.join(2)




def barrier(client: WsClient, timeout: float = 5.0) -> int:
    """Ping and wait for the pong: everything sent before has been handled by then.

    Returns the client-side frame index of the pong.
    """
    mark = client.mark()
    client.send({"event": "ping"})
    client.expect("pong", timeout, start=mark)
    with client._cond:
        return next(i for i in range(mark, len(client.frames))
                    if client.frames[i].get("event") == "pong")


def of(frames: list[Frame], *events: str, message_id: str | None = None) -> list[Frame]:
    """The frames whose event is one of `events` (and, if given, with that message id)."""
    return [f for f in frames if f.get("event") in events
            and (message_id is None or f.get("message_id") == message_id)]


def names(frames: list[Frame]) -> list[str]:
    return [str(f.get("event")) for f in frames]
