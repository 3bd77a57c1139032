"""The WebSocket, on websocket-client: the only place its exceptions are translated."""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import websocket
from websocket._handshake import SUPPORTED_REDIRECT_STATUSES
from websocket._http import _ssl_socket as ssl_socket
from websocket._socket import DEFAULT_SOCKET_OPTION
from websocket._url import get_proxy_info, parse_url

from voicesync._framing import frame as _frame
from voicesync._outbox import Outbox
from voicesync._port import UpgradeRefusedError
from voicesync._tcp import connect
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
_CLOSE_FLUSH = 0.2  # seconds close() gives an idle writer to send the close frame
_SMALL_TAIL = 4096  # queued bytes close() still lets the writer send (within _CLOSE_FLUSH)
_HEADER_MAX = 14  # a frame header's reads are never refused by the size cap
OUTBOX_BYTES = 1 << 20  # outbound bytes queued before senders wait


class FrameTooLargeError(ConnectionClosedError):
    """An inbound frame was over the size cap; the socket was closed with 1009."""


class Transport:
    """One WebSocket connection. `recv` belongs to one reader thread; `send` to any thread.

    Every write goes through an `Outbox` and its writer thread, so no caller ever blocks
    in the socket; `shutdown()` wakes a reader blocked in recv() at once, which close()
    alone does not.
    """

    def __init__(self, *, max_frame_bytes: int, ssl_context: ssl.SSLContext | None,
                 send_timeout: float = 7.5, on_stall: Callable[[], None] = lambda: None,
                 max_outbox_bytes: int = OUTBOX_BYTES, headers: Sequence[str] = ()) -> None:
        self._headers = list(headers)  # e.g. "Authorization: Bearer ..." (sent in the upgrade)
        self._max = max_frame_bytes
        self._ssl = ssl_context
        self._ws: Any = None
        self._opening: Any = None  # the socket during open(), so close() can break it
        self._dialing: socket.socket | None = None  # our own TCP socket during open()
        self._cancelled = threading.Event()
        self._send_timeout = send_timeout
        self._on_stall = on_stall
        self._max_outbox = max_outbox_bytes
        self._outbox: Outbox | None = None

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
                       suppress_origin=True, socket=sock, redirect_limit=0,
                       header=self._headers)
        except (websocket.WebSocketException, OSError) as exc:
            self._abandon(ws)
            status = getattr(ws.handshake_response, "status", None)
            if status in SUPPORTED_REDIRECT_STATUSES:
                raise UpgradeRefusedError(
                    f"{url} answered the WebSocket upgrade with a redirect (HTTP {status}); "
                    "voicesync does not follow redirects: set url= to the final address",
                    url=url, status=status) from None
            if isinstance(exc, (websocket.WebSocketTimeoutException, TimeoutError)):
                raise ConnectTimeout(
                    f"could not reach {url} within {timeout:g} s", url=url) from exc
            if getattr(exc, "status_code", None) in (401, 403):
                raise AuthenticationError(
                    f"{url} refused the connection ({_describe(exc)}); check PINECALL_API_KEY",
                    url=url) from exc
            if isinstance(refused := getattr(exc, "status_code", None), int):
                raise UpgradeRefusedError(f"{url} refused the upgrade ({_describe(exc)})",
                                          url=url, status=refused) from exc
            raise ConnectError(f"could not open {url}: {_describe(exc)}", url=url) from exc
        self._dialing = None
        self._cap_frames(ws)
        ws.frame_buffer.recv = _ReadAhead(ws._recv)
        sock = ws.sock
        outbox = Outbox(sock.send, max_bytes=self._max_outbox,
                        stall_timeout=self._send_timeout, on_stall=self._stalled,
                        try_write=None if isinstance(sock, ssl.SSLSocket) else (
                            lambda data: _send_nowait(sock, data)))
        # websocket-client answers pings and close frames itself, on the reader thread:
        # those go through the outbox too, so the writer stays the socket's only writer.
        ws.pong = lambda payload: outbox.put(_frame(payload, websocket.ABNF.OPCODE_PONG))
        ws.send_close = lambda status=CLOSE_NORMAL, reason=b"": outbox.put(
            _frame(struct.pack("!H", status) + reason, websocket.ABNF.OPCODE_CLOSE))
        self._outbox = outbox
        self._ws = ws

    def greet(self, text: str) -> None:
        """Write the first frame on this thread, then start the writer thread.

        Before the first recv(): TLS 1.3 delivers its session tickets with the first
        read, and OpenSSL must not be read and written from two threads at that point.
        """
        ws, outbox = self._ws, self._outbox
        if ws is None or outbox is None:
            raise ConnectionClosedError("not connected", reason="not connected")
        try:
            ws.sock.sendall(_frame(text.encode("utf-8"), websocket.ABNF.OPCODE_TEXT))
        except OSError as exc:
            raise ConnectionClosedError(f"send failed: {_describe(exc)}", code=_ABNORMAL,
                                        reason="connection_lost") from exc
        outbox.start()

    def start(self) -> None:
        """Start the writer thread without a first frame, for a server that speaks first."""
        self._live_outbox().start()

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
                connect(sock, address, deadline, self._cancelled)
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

    def _abandon(self, ws: Any) -> None:
        ws.shutdown()
        sock, self._dialing = self._dialing, None
        if sock is not None:
            sock.close()

    def _cap_frames(self, ws: Any) -> None:
        # websocket-client has no size limit; refuse a frame from its header, before its
        # payload is buffered, counting the fragments of this message already held, so a
        # fragmented message never holds more than the cap either.
        buffer, assembler = ws.frame_buffer, ws.cont_frame
        read: Callable[[int], bytes] = buffer.recv_strict
        add: Callable[[Any], None] = assembler.add
        cap = self._max

        def held() -> int:
            pending = assembler.cont_data
            return len(pending[1]) if pending else 0

        def capped(size: int) -> bytes:
            if size > _HEADER_MAX and size > cap - held():
                raise _Oversize(held() + size)
            return read(size)

        def capped_add(frame: Any) -> None:
            if held() + len(frame.data) > cap:
                raise _Oversize(held() + len(frame.data))
            add(frame)

        buffer.recv_strict = capped
        assembler.add = capped_add

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

    def send(self, text: str) -> bool:
        """Queue one text frame for the writer thread. Any thread.

        Returns False when the outbox is full and this thread may not wait (see
        `_outbox.never_wait`). Raises ConnectionClosedError if the socket is gone or
        the server took no data for `send_timeout` (reason ``send_timeout``).
        """
        return self._live_outbox().put(
            _frame(text.encode("utf-8"), websocket.ABNF.OPCODE_TEXT))

    def send_binary(self, data: bytes) -> bool:
        """Queue one binary frame, as `send` does a text one. Any thread."""
        return self._live_outbox().put(_frame(data, websocket.ABNF.OPCODE_BINARY))

    def _live_outbox(self) -> Outbox:
        outbox = self._outbox
        if outbox is None:
            raise ConnectionClosedError("not connected", reason="not connected")
        return outbox

    def stalled(self, now: float, since: float) -> bool:
        """True once the server took no data for `send_timeout` after `since` (it is then
        declared dead)."""
        outbox = self._outbox
        return outbox is not None and outbox.stalled(now, since=since)

    def _stalled(self) -> None:
        self._on_stall()
        self.shutdown()

    def shutdown(self) -> None:
        """Break the connection now, waking any thread blocked in recv() or send()."""
        ws = self._ws
        sock = getattr(ws, "sock", None) if ws is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._outbox is not None:
            self._outbox.stop()

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Send a close frame if the writer is idle, then shut the socket down. Any
        thread; never waits on the writer (it may be blocked on a peer that stopped
        reading), so it returns within about _CLOSE_FLUSH seconds.

        The file descriptor stays open until `release()`, so a reader still inside
        recv() never sees it reused by another socket. During open() it breaks the
        upgrade instead, so a redial stuck in a silent handshake fails at once.
        """
        ws, outbox = self._ws, self._outbox
        if ws is None or outbox is None:
            self._cancelled.set()
            for sock in (getattr(self._opening, "sock", None), self._dialing):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
            return
        with contextlib.suppress(ConnectionClosedError):
            if outbox.idle():
                outbox.put(_frame(struct.pack("!H", code) + reason.encode(),
                                  websocket.ABNF.OPCODE_CLOSE))
                outbox.flush(_CLOSE_FLUSH)
            elif outbox.queued_bytes <= _SMALL_TAIL:  # e.g. the answer to the server's close
                outbox.flush(_CLOSE_FLUSH)
        self.shutdown()

    def release(self) -> None:
        """Stop the writer and free the socket. Only the reader thread calls this,
        after its last recv()."""
        self.shutdown()
        if self._outbox is not None:
            self._outbox.join(_CLOSE_FLUSH)
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


def _send_nowait(sock: socket.socket, data: bytes) -> int:
    """What a plain TCP socket takes without blocking (TLS has no such call)."""
    try:
        return sock.send(data, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return 0


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
