"""The WebSocket, on websocket-client: the only place its exceptions are translated."""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import os
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import websocket
from websocket._handshake import SUPPORTED_REDIRECT_STATUSES
from websocket._http import _ssl_socket as ssl_socket
from websocket._socket import DEFAULT_SOCKET_OPTION
from websocket._url import get_proxy_info, parse_url

from voicesync.errors import (
    AuthenticationError,
    ConnectError,
    ConnectionClosedError,
    ConnectTimeout,
    ProtocolError,
)

logger = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
_NO_STATUS = 1005
_ABNORMAL = 1006
_READ_AHEAD = 1 << 16
_DIAL_SLICE = 0.05  # seconds between checks for close() while a TCP connect is pending


class FrameTooLargeError(ConnectionClosedError):
    """An inbound frame was over the size cap; the socket was closed with 1009."""


class Transport:
    """One WebSocket connection. `recv` belongs to one reader thread; `send` to any thread.

    websocket-client serialises writers with its own lock (enable_multithread), and
    `shutdown()` wakes a reader blocked in recv() at once, which close() alone does not.
    """

    def __init__(self, *, max_frame_bytes: int, ssl_context: ssl.SSLContext | None) -> None:
        self._max = max_frame_bytes
        self._ssl = ssl_context
        self._ws: Any = None
        self._opening: Any = None  # the socket during open(), so close() can break it
        self._dialing: socket.socket | None = None  # our own TCP socket during open()
        self._cancelled = threading.Event()
        self._outbox: collections.deque[bytes] = collections.deque()  # frames not yet sent
        self._send_lock = threading.Lock()

    def open(self, url: str, timeout: float) -> None:
        """Open the socket and finish the HTTP upgrade within `timeout` seconds."""
        ws: Any = websocket.WebSocket(
            skip_utf8_validation=True,  # recv() decodes (and so validates) text itself
            enable_multithread=True,
            sslopt={"context": self._ssl} if self._ssl is not None else None,
        )
        self._opening = ws
        deadline = time.monotonic() + timeout
        try:
            sock = self._dial(url, deadline)
            # Redirects are not followed: the key would travel to a host nobody checked.
            ws.connect(url, timeout=max(0.001, deadline - time.monotonic()),
                       suppress_origin=True, socket=sock, redirect_limit=0)
        except (websocket.WebSocketException, OSError) as exc:
            self._abandon(ws)
            status = getattr(ws.handshake_response, "status", None)
            if status in SUPPORTED_REDIRECT_STATUSES:
                raise ConnectError(
                    f"{url} answered the WebSocket upgrade with a redirect (HTTP {status}); "
                    "voicesync does not follow redirects: set url= to the final address",
                    url=url) from None
            if isinstance(exc, (websocket.WebSocketTimeoutException, TimeoutError)):
                raise ConnectTimeout(
                    f"could not reach {url} within {timeout:g} s", url=url) from exc
            if getattr(exc, "status_code", None) in (401, 403):
                raise AuthenticationError(
                    f"{url} refused the connection ({_describe(exc)}); check PINECALL_API_KEY",
                    url=url) from exc
            raise ConnectError(f"could not open {url}: {_describe(exc)}", url=url) from exc
        self._dialing = None
        self._cap_frames(ws)
        ws.frame_buffer.recv = _ReadAhead(ws._recv)
        self._ws = ws

    def _dial(self, url: str, deadline: float) -> socket.socket | None:
        """Connect TCP (and TLS) ourselves, so that close() can break a connect whose SYNs
        go unanswered: websocket-client only publishes its socket once connect() returns.

        Returns None when a proxy is configured for wss:// (https_proxy): websocket-client
        then dials through it, and only its upgrade can be broken. Plain ws:// never goes
        through a proxy: the proxy would read the key in the connect frame.
        """
        host, port, _, secure = parse_url(url)
        if secure and get_proxy_info(host, secure)[0] is not None:
            return None
        err: OSError | None = None
        for family, kind, proto, _, address in socket.getaddrinfo(host, port, 0,
                                                                   socket.SOCK_STREAM):
            sock = socket.socket(family, kind, proto)
            self._dialing = sock
            try:
                self._connect(sock, address, deadline)
            except OSError as exc:
                sock.close()
                if isinstance(exc, TimeoutError) or self._cancelled.is_set():
                    raise
                err = exc  # refused or unreachable: try the next address
                continue
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            for option in DEFAULT_SOCKET_OPTION:
                with contextlib.suppress(OSError):
                    sock.setsockopt(*option)
            if secure:
                sock = ssl_socket(sock, {"context": self._ssl} if self._ssl else {}, host)
                self._dialing = sock
            return sock
        raise err or OSError(f"no address for {host}")

    def _connect(self, sock: socket.socket, address: Any, deadline: float) -> None:
        """A non-blocking connect, watched in short slices so close() can cancel it."""
        sock.setblocking(False)
        code = sock.connect_ex(address)
        while code in (errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK):
            if self._cancelled.is_set():
                raise ConnectionAbortedError(errno.ECONNABORTED, "closed while connecting")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(errno.ETIMEDOUT, "timed out connecting")
            _, writable, _ = select.select([], [sock], [], min(left, _DIAL_SLICE))
            if writable:
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                break
        if code:
            raise OSError(code, os.strerror(code))
        sock.setblocking(True)

    def _abandon(self, ws: Any) -> None:
        ws.shutdown()
        sock, self._dialing = self._dialing, None
        if sock is not None:
            sock.close()

    def _cap_frames(self, ws: Any) -> None:
        # websocket-client has no size limit; refuse a frame from its header, before
        # the payload is buffered.
        buffer = ws.frame_buffer
        read: Callable[[int], bytes] = buffer.recv_strict
        cap = self._max

        def capped(size: int) -> bytes:
            if size > cap:
                raise _Oversize(size)
            return read(size)

        buffer.recv_strict = capped

    def set_timeout(self, seconds: float | None) -> None:
        """Bound the next reads (used only during the handshake)."""
        if self._ws is not None:
            with contextlib.suppress(OSError):
                self._ws.settimeout(seconds)

    def recv(self) -> str | None:
        """Block for the next text frame; None for frames to ignore (binary).

        Raises ConnectionClosedError when the peer closes or the socket breaks,
        ConnectTimeout when a read deadline set by set_timeout passes, and
        ProtocolError for a text frame that is not UTF-8 (the connection stays up).
        """
        ws = self._ws
        if ws is None:
            raise ConnectionClosedError("not connected", reason="not connected")
        try:
            opcode, frame = ws.recv_data_frame(control_frame=False)
        except _Oversize as exc:
            self.close(CLOSE_TOO_BIG, "message too big")
            raise FrameTooLargeError(
                f"the server sent a {exc.size}-byte frame, over the {self._max}-byte cap",
                code=CLOSE_TOO_BIG, reason="frame_too_large") from None
        except websocket.WebSocketTimeoutException as exc:
            raise ConnectTimeout("no answer from the server in time") from exc
        except (websocket.WebSocketException, OSError, ValueError) as exc:
            raise ConnectionClosedError(
                f"connection lost: {_describe(exc)}", code=_ABNORMAL,
                reason="connection_lost") from exc
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            code, reason = _close_status(frame.data)
            raise ConnectionClosedError(
                f"the server closed the connection ({code} {reason})".rstrip(),
                code=code, reason=reason or "connection_lost")
        if opcode != websocket.ABNF.OPCODE_TEXT:
            return None
        data = frame.data
        if len(data) > self._max:  # fragmented messages are capped as a whole too
            self.close(CLOSE_TOO_BIG, "message too big")
            raise FrameTooLargeError(
                f"the server sent a {len(data)}-byte message, over the {self._max}-byte cap",
                code=CLOSE_TOO_BIG, reason="frame_too_large")
        try:
            return data.decode("utf-8") if isinstance(data, bytes) else str(data)
        except UnicodeDecodeError:
            raise ProtocolError("text frame is not valid UTF-8") from None

    def send(self, text: str) -> None:
        """Write one text frame. Raises ConnectionClosedError if the socket is gone."""
        ws = self._ws
        if ws is None:
            raise ConnectionClosedError("not connected", reason="not connected")
        outbox = self._outbox
        outbox.append(websocket.ABNF.create_frame(text, websocket.ABNF.OPCODE_TEXT).format())
        # Combining writes: whoever holds the send lock sends every queued frame, and a
        # thread that finds it busy leaves its frame to the holder instead of waiting.
        # A holder drops the GIL in send() and must win it back before it can release
        # the lock; with hundreds of handler threads, waiting senders formed a convoy
        # behind it and the token rate collapsed. The holder re-checks the queue after
        # releasing, so no frame is left behind; one queue keeps every stream in order.
        lock = self._send_lock
        while outbox and lock.acquire(blocking=False):
            try:
                data = b"".join([outbox.popleft() for _ in range(len(outbox))])
                with ws.lock:  # websocket-client's own writes (pong, close) take it too
                    while data:
                        data = data[ws._send(data):]
            except (websocket.WebSocketException, OSError) as exc:
                raise ConnectionClosedError(
                    f"send failed: {_describe(exc)}", code=_ABNORMAL, reason="connection_lost",
                ) from exc
            finally:
                lock.release()

    def shutdown(self) -> None:
        """Break the connection now, waking any thread blocked in recv() or send()."""
        ws = self._ws
        sock = getattr(ws, "sock", None) if ws is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Send a close frame if the socket still writes, then shut it down. Any thread.

        The file descriptor stays open until `release()`, so a reader still inside
        recv() never sees it reused by another socket. During open() it breaks the
        upgrade instead, so a redial stuck in a silent handshake fails at once.
        """
        ws = self._ws
        if ws is None:
            self._cancelled.set()
            for sock in (getattr(self._opening, "sock", None), self._dialing):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
            return
        sock = getattr(ws, "sock", None)
        if sock is not None:
            with contextlib.suppress(Exception):
                sock.settimeout(0.2)  # a black-holed peer must not hold close() up
                ws.send_close(code, reason.encode())
        self.shutdown()

    def release(self) -> None:
        """Free the socket. Only the reader thread calls this, after its last recv()."""
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.shutdown()


class _ReadAhead:
    """Serves websocket-client's sized reads from one large recv() per batch of frames.

    websocket-client reads a frame with two or three recv() calls (header, length,
    payload). Each call releases the GIL and has to win it back; with many busy
    handler threads that costs the reader thread up to milliseconds per call, and the
    whole client falls behind. One recv() per batch keeps the reader ahead of them.
    """

    __slots__ = ("_data", "_pos", "_recv")

    def __init__(self, recv: Callable[[int], bytes]) -> None:
        self._recv = recv
        self._data = b""
        self._pos = 0

    def __call__(self, size: int) -> bytes:
        if self._pos >= len(self._data):
            self._data, self._pos = self._recv(_READ_AHEAD), 0
        chunk = self._data[self._pos:self._pos + size]
        self._pos += len(chunk)
        return chunk


class _Oversize(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def _close_status(data: bytes) -> tuple[int, str]:
    if len(data) < 2:
        return _NO_STATUS, ""
    (code,) = struct.unpack("!H", data[:2])
    return code, data[2:].decode("utf-8", "replace")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"TLS certificate verification failed ({exc.verify_message}); pass "
                "ssl_context= with your CA, or tls_verify=False for a development server")
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return "connection refused (is the server running?)"
    status = getattr(exc, "status_code", None)
    if status is not None:
        return f"HTTP {status} during the WebSocket upgrade"
    return str(exc) or type(exc).__name__
