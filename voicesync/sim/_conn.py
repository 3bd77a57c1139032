"""One client socket on the simulator: its ordered writer thread, withheld acks, and drops."""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection

from voicesync.sim._record import FrameLog
from voicesync.sim._util import JsonDict

logger = logging.getLogger(__name__)


@dataclass
class Withholds:
    """Events the simulator holds back instead of sending (§9.8), until released."""

    events: set[str] = field(default_factory=set)
    held: list[tuple[SimConnection, JsonDict]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hold(self, conn: SimConnection, frame: JsonDict) -> bool:
        with self.lock:
            if frame.get("event") not in self.events:
                return False
            self.held.append((conn, frame))
            return True

    def release(self, events: set[str] | None) -> list[tuple[SimConnection, JsonDict]]:
        """Stop withholding `events` (all when None); returns the frames held for them."""
        with self.lock:
            if events is None:
                self.events.clear()
                out, self.held = self.held, []
                return out
            self.events -= events
            out = [(c, f) for c, f in self.held if f.get("event") in events]
            self.held = [(c, f) for c, f in self.held if f.get("event") not in events]
            return out


_Item = tuple[str, Any, int]  # kind, payload, when it was queued (ns)


class SimConnection:
    """A connected client. `send` never blocks: a per-connection writer thread owns the socket.

    So a client that stops reading stalls only its own writer, never the clock or the
    other clients, and frames leave in exactly the order they were queued.
    """

    def __init__(self, conn_id: int, ws: ServerConnection, log: FrameLog,
                 withholds: Withholds) -> None:
        self.id = conn_id
        self.ws = ws
        self.authenticated = False
        self.closed = threading.Event()
        self._log = log
        self._withholds = withholds
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._writer = threading.Thread(
            target=self._write_loop, name=f"voicesync-sim-send-{conn_id}", daemon=True
        )

    def start(self) -> None:
        self._writer.start()

    def send(self, frame: JsonDict) -> None:
        """Queue one JSON frame (unless its event is being withheld)."""
        if self.closed.is_set() or self._withholds.hold(self, frame):
            return
        self._queue.put(("frame", frame, self._log.now_ns()))

    def send_now(self, frame: JsonDict) -> None:
        """Queue a frame even if its event is withheld (used to release held frames)."""
        if not self.closed.is_set():
            self._queue.put(("frame", frame, self._log.now_ns()))

    def send_raw(self, text: str) -> None:
        """Queue a text frame verbatim (may be invalid JSON, on purpose)."""
        if not self.closed.is_set():
            self._queue.put(("raw", text, self._log.now_ns()))

    def drop(self, code: int = 1011, reason: str = "", *, abrupt: bool = False) -> None:
        """Close after the frames already queued: with a close frame, or abruptly (no frame)."""
        self._queue.put(("abort", None, 0) if abrupt else ("close", (code, reason), 0))

    def abort(self) -> None:
        """Cut the TCP connection now, even if the writer is stuck in a send."""
        self.closed.set()
        with contextlib.suppress(OSError):
            self.ws.socket.shutdown(socket.SHUT_RDWR)

    def finish(self, timeout: float = 1.0) -> None:
        """The socket is gone: stop the writer."""
        self.closed.set()
        self._queue.put(None)
        if self._writer.is_alive() and self._writer is not threading.current_thread():
            self._writer.join(timeout)

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            kind, payload, ts_ns = item  # stamped when queued: the clock may jump meanwhile
            try:
                if kind == "frame":
                    text = json.dumps(payload, separators=(",", ":"))
                    self._log.add("out", self.id, payload, ts_ns=ts_ns)
                    self.ws.send(text)
                elif kind == "raw":
                    self._log.add("out", self.id, _parse(payload), payload, ts_ns=ts_ns)
                    self.ws.send(payload)
                elif kind == "close":
                    code, reason = payload
                    self.ws.close(code, reason)
                else:
                    self.ws.socket.shutdown(socket.SHUT_RDWR)
            except (ConnectionClosed, OSError):
                self.closed.set()
            except Exception:
                logger.exception("simulator writer failed on connection %d", self.id)


def _parse(text: str) -> JsonDict | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
