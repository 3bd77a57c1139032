"""The `voicesync-heartbeat` thread: client pings and silent-peer detection.

Timers live in `_timer.py`; the heartbeat keeps its own thread so that no timer callback
(a slow history store) can delay a ping or the judgment of a silent server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

from voicesync._outbox import never_wait
from voicesync._port import Port

logger = logging.getLogger(__name__)

# A beat this late means the whole process was stalled (a C call holding the GIL, a
# long GC, the machine swapping): the reader was frozen too, so the silence it measured
# says nothing about the server. Such a beat pings at once, and the server's silence is
# measured from that moment: only a full ping_timeout with no frame after it counts.
STALL = 0.5


class Link(Protocol):
    """What the heartbeat reads and does on a connection (a `Client`'s `ClientPorts` is
    one): a narrow seam, so the heartbeat can be driven without a client and imports none."""

    @property
    def ping_interval(self) -> float: ...
    @property
    def ping_timeout(self) -> float: ...
    @property
    def send_timeout(self) -> float: ...
    def is_connected(self) -> bool: ...
    def port(self) -> Port | None:
        """The transport in use, None between connections."""
    def last_rx(self) -> float:
        """time.monotonic() of the last frame received."""
    def send(self, frame: Mapping[str, Any]) -> bool: ...
    def declare_dead(self, reason: str) -> None: ...


class Heartbeat:
    """Pings every `ping_interval` while connected; a peer silent for `ping_timeout`
    is declared dead and its socket shut down, so the reader redials. Never runs user code.
    """

    def __init__(self, client: Link) -> None:
        self._client = client
        self._wake = threading.Condition()
        self._stop = False
        self._last_ping = 0.0
        self._due = 0.0  # when the current wait should end; lateness reveals a stall
        self._resumed = 0.0  # when the process last resumed from a stall
        self._thread = threading.Thread(
            target=self._run, name="voicesync-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        client = self._client
        never_wait()  # a full outbox skips a ping rather than blocking the heartbeat
        while True:
            now = time.monotonic()
            with self._wake:
                if self._stop:
                    return
            wait = self._beat(now) if client.is_connected() else client.ping_interval
            with self._wake:
                if not self._stop:
                    self._due = time.monotonic() + max(wait, 0.001)
                    self._wake.wait(max(wait, 0.001))

    def _beat(self, now: float) -> float:
        """Ping when due and check liveness; returns seconds until the next check."""
        client = self._client
        if now - self._due > STALL:
            # The process was frozen, the reader and the writer too: silence (and a
            # socket taking no data) count only from now on.
            logger.info("the process stalled for %.1f s; checking the server again before "
                        "judging its silence", now - self._due)
            # At most once per ping_timeout, so a machine that is slow all the time
            # still detects a dead server, within 2 x ping_timeout at worst.
            if now - self._resumed > client.ping_timeout:
                self._resumed = now
            self._ping(now)
        transport = client.port()
        if transport is not None and transport.stalled(now, self._resumed):
            return client.ping_interval  # declared dead: the reader redials
        silent = now - max(client.last_rx(), self._resumed)
        if silent > client.ping_timeout:
            logger.warning("no frame from the server for %.1f s; reconnecting", silent)
            client.declare_dead("ping_timeout")
            return client.ping_interval
        if now - self._last_ping >= client.ping_interval:
            self._ping(now)
        next_ping = self._last_ping + client.ping_interval - now
        deadline = max(client.last_rx(), self._resumed) + client.ping_timeout - now
        # Look at least twice per send_timeout, so a stalled writer is caught in time.
        return max(0.001, min(next_ping, deadline + 0.001, client.send_timeout / 2))

    def _ping(self, now: float) -> None:
        self._last_ping = now
        self._client.send({"event": "ping"})
