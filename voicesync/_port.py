"""The transport port: what the connection core needs from a WebSocket.

`_transport.Transport` implements it on websocket-client; `voicesync.testing.FakeTransport`
implements it in memory, so the dispatch, stream and lifecycle logic can be tested
without sockets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from voicesync.errors import ConnectError


class UpgradeRefusedError(ConnectError):
    """The server answered the WebSocket upgrade with a redirect or an HTTP error `status`
    (401 and 403 raise `AuthenticationError` instead); a caller with its own status
    mapping reads it."""

    def __init__(self, message: str, *, url: str, status: int) -> None:
        super().__init__(message, url=url)
        self.status = status


class Port(Protocol):
    """One connection. `recv` belongs to the reader thread; `send` to any thread."""

    def open(self, url: str, timeout: float) -> None:
        """Connect and finish the upgrade within `timeout` s (ConnectTimeout, ConnectError,
        AuthenticationError, UpgradeRefusedError otherwise)."""

    def greet(self, text: str) -> None:
        """Send the first frame and start sending."""

    def set_timeout(self, seconds: float | None) -> None:
        """Bound the next reads (the handshake); None for no bound."""

    def recv(self) -> str | None:
        """The next text frame (None: a frame to ignore); raises ConnectionClosedError."""

    def send(self, text: str) -> bool:
        """Queue a frame; False if refused without waiting; ConnectionClosedError if gone."""

    def stalled(self, now: float, since: float) -> bool:
        """True once the peer took no data for the send timeout (it is then dead)."""

    def shutdown(self) -> None:
        """Break the connection now; wakes recv() and send()."""

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close (a close frame if the writer is idle), or cancel a pending open()."""

    def release(self) -> None:
        """Free what is left; the reader calls it after its last recv()."""



class StreamPort(Port, Protocol):
    """A port for a socket whose server speaks first and that carries binary frames too
    (the live-transcription socket); `_transport.Transport` implements it."""

    def start(self) -> None:
        """Start sending without a first frame (instead of `greet`)."""

    def send_binary(self, data: bytes) -> bool:
        """Queue a binary frame, as `send` does a text one."""


PortFactory = Callable[..., Port]  # keyword arguments: see `_transport.Transport`
