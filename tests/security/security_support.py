"""Pieces of the security suite: a recording HTTP endpoint, test host names, a canary watch,
hostile JSON values and a check that a value has its documented type.

Only 127.0.0.1 is ever reached. Hosts named ``*.test`` (``evil.test``) are mapped to
127.0.0.1 by `map_test_hosts`, which wraps the process's resolver for one test, so a
redirect or a proxy can point at a host that does not look like loopback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import socket
import ssl
import threading
import traceback
import types
import typing
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import pytest
from helpers import CANARY_KEY
from hypothesis import strategies as st
from typing_extensions import Self

TEST_HOST = "evil.test"

# Every Unicode code point, lone surrogates included (hypothesis leaves them out by default).
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=30)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | ANY_TEXT | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(min_value=-(10 ** 400), max_value=10 ** 400),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=8)


def conforms(value: Any, hint: Any) -> bool:
    """True when `value` has the documented type `hint` (a float is finite; a bool is not
    an int)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(conforms(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is tuple:
        return isinstance(value, tuple)
    if origin is not None:
        return isinstance(value, origin)
    if hint is float:
        return isinstance(value, float) and math.isfinite(value)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is Mapping or origin is Mapping:
        return isinstance(value, Mapping)
    return isinstance(value, hint)


def map_test_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolve every ``*.test`` name to 127.0.0.1 for the rest of the test."""
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, (str, bytes)):
            name = host.decode() if isinstance(host, bytes) else host
            if name.endswith(".test"):
                host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


class HttpEndpoint:
    """A loopback HTTP server that records every request and answers each the same way.

    `redirect_to` answers 302 with that Location (the WebSocket upgrade and REST alike);
    otherwise `reply_status` (200) with `body` as JSON (NaN and Infinity included), or
    with the bytes `raw`. Also serves as a forward proxy: a proxied request
    arrives with an absolute URL in its path, and is recorded the same way.
    """

    def __init__(self, *, redirect_to: str | None = None, status: int = 302,
                 body: Any = None, ssl_context: ssl.SSLContext | None = None) -> None:
        self.redirect_to = redirect_to
        self.status = status
        self.body = body if body is not None else {"token": "tok_from_endpoint"}
        self.raw: bytes | None = None  # sent as is instead of `body`, when set
        self.reply_status = 200  # the status of an answer that is not a redirect
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers)
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                # Read the request body first: closing a socket with unread bytes in its
                # buffer sends a reset, which can cut the client's read of our answer short.
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with endpoint._lock:
                    endpoint.requests.append((self.command, self.path, dict(self.headers)))
                if endpoint.redirect_to is not None:
                    self.send_response(endpoint.status)
                    self.send_header("Location", endpoint.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                raw = endpoint.raw
                data = json.dumps(endpoint.body).encode() if raw is None else raw
                self.send_response(endpoint.reply_status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_CONNECT = _answer  # noqa: N815 (http.server's names)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
        self.secure = ssl_context is not None
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="security-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}"

    def seen(self) -> list[tuple[str, str, dict[str, str]]]:
        with self._lock:
            return list(self.requests)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)


class CanaryWatch(logging.Handler):
    """Every log record (any logger, every level) and every handler call of a test.

    Records of `websockets` (the test's own server library) are skipped: it logs the
    frames the SDK sent it, key included, and is not part of voicesync.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self._lock = threading.Lock()
        self.texts: list[str] = []
        self.records = 0
        self.events = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("websockets"):
            return
        text = self.format(record)  # includes the formatted traceback, if any
        with self._lock:
            self.records += 1
            self.texts.append(text)

    def saw_handler_args(self, args: tuple[Any, ...]) -> None:
        texts = [describe(arg) for arg in args]
        with self._lock:
            self.events += 1
            self.texts.extend(texts)

    def leaks(self) -> list[str]:
        with self._lock:
            return [t[:300] for t in self.texts if CANARY_KEY in t]


def describe(value: Any) -> str:
    """Everything a handler could read off a value: repr, raw frame, exception text."""
    parts = [repr(value), str(value)]
    raw = getattr(value, "raw", None)
    if raw is not None:
        parts.append(json.dumps(dict(raw), default=repr))
    if isinstance(value, BaseException):
        parts.append("".join(traceback.format_exception(value)))
        parts.extend(str(v) for v in vars(value).values())
    return "\n".join(parts)


class Tunnel:
    """A one-connection HTTP CONNECT proxy on 127.0.0.1 that records what it carries."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.asked: list[bytes] = []  # request lines, e.g. b"CONNECT host:443 HTTP/1.1"
        self.carried = bytearray()  # every byte piped, both ways
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="security-tunnel", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _serve(self) -> None:
        try:
            down, _ = self._listener.accept()
        except OSError:
            return
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = down.recv(4096)
            if not chunk:
                return
            head += chunk
        with self._lock:
            self.asked.append(head.split(b"\r\n", 1)[0])
        up = socket.create_connection(self._upstream)
        down.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        threading.Thread(target=self._pipe, args=(up, down), daemon=True).start()
        self._pipe(down, up)

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                with self._lock:
                    self.carried += data
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._listener.close()
