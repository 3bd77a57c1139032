"""The stand-in model: a scripted OpenAI- and Anthropic-compatible HTTP endpoint (not a real LLM).

It exists for tests and the demo. It streams scripted replies at a fixed token rate, can
stall before a token or fail mid-stream, and records each request, including the monotonic
time at which the client hung up, so a test can prove a barge-in closed the provider stream.
Every response carries the ``X-Voicesync-Stand-In`` header; it binds loopback only.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeAlias

from typing_extensions import Self

from voicesync.sim.model._formats import FORMATS, Api, Reply, ToolCall, error_body

logger = logging.getLogger(__name__)

__all__ = ["STAND_IN_HEADER", "ModelRequest", "ModelServer", "Reply", "Responder", "ToolCall"]

STAND_IN_HEADER = "X-Voicesync-Stand-In"
_STAND_IN_VALUE = "voicesync stand-in model; replies are scripted, not generated"
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_POLL = 0.05  # how often a wait re-checks for stop(); a client hang-up wakes it at once


@dataclass
class ModelRequest:
    """The record of one request: what was asked, and what became of the stream."""

    api: Api
    body: dict[str, Any]
    stream: bool
    started_ns: int
    reply: Reply | None = None
    tokens_sent: int = 0
    finished_ns: int | None = None
    disconnected_ns: int | None = None
    stalled: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def last_user_text(self) -> str:
        return last_user_text(self.api, self.body)


Responder: TypeAlias = Callable[[ModelRequest], "Reply | str"]


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                if part.get("type") == "tool_result":
                    parts.append(_text_of(part.get("content", "")))
                else:
                    parts.append(str(part.get("text", part.get("output", ""))))
        return " ".join(p for p in parts if p)
    return ""


def last_user_text(api: Api, body: Mapping[str, Any]) -> str:
    """The text of the newest user (or tool-result) entry of a request body."""
    items: Any = body.get("input") if api == "responses" else body.get("messages")
    if isinstance(items, str):
        return items
    for item in reversed(items if isinstance(items, list) else []):
        if not isinstance(item, dict):
            continue
        if item.get("type") == "function_call_output":
            return str(item.get("output", ""))
        if item.get("role") in ("user", "tool"):
            return _text_of(item.get("content", ""))
    return ""


def default_reply(request: ModelRequest) -> Reply:
    """A deterministic reply derived from the last user message."""
    heard = request.last_user_text.strip().rstrip(".!?") or "nothing"
    return Reply(text=f"You said: {heard}. This is the voicesync stand-in model.")


class _HangupError(Exception):
    """The client went away mid-response."""


class _Emitter:
    """Writes one response's SSE frames, paced, watching the socket for the client's hang-up."""

    def __init__(self, handler: _Handler, record: ModelRequest, rate: float) -> None:
        self.handler = handler
        self.record = record
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.sock: socket.socket = handler.connection
        self.stopping = handler.server.stopping  # type: ignore[attr-defined]

    def _hung_up(self) -> None:
        if self.record.disconnected_ns is None:
            self.record.disconnected_ns = time.monotonic_ns()
            logger.info("stand-in model: client disconnected after %d tokens",
                        self.record.tokens_sent)
        raise _HangupError

    def wait(self, seconds: float) -> None:
        """Sleep, but return at once (via _HangupError) when the client closes the connection."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.stopping.is_set():
                raise _HangupError
            try:
                readable, _, _ = select.select([self.sock], [], [], min(left, _POLL))
                if readable and not self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT):
                    self._hung_up()
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                self._hung_up()
            if readable:  # unexpected bytes from the client: pace without select
                self.stopping.wait(min(left, _POLL))

    def send(self, data: str) -> None:
        raw = data.encode()
        try:
            self.handler.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
            self.handler.wfile.flush()
        except OSError:
            self._hung_up()

    def event(self, payload: Mapping[str, Any], name: str | None = None) -> None:
        prefix = f"event: {name}\n" if name else ""
        self.send(f"{prefix}data: {json.dumps(payload)}\n\n")

    def token(self, index: int, reply: Reply) -> None:
        """Wait the pacing (and any scripted stall) that precedes token `index`."""
        if index == reply.stall_before and reply.stall > 0:
            self.record.stalled.set()
            self.wait(reply.stall)
        elif index > 0:
            self.wait(self.interval)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "voicesync-stand-in-model"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("stand-in model: " + format, *args)

    def _json(self, status: int, payload: Mapping[str, Any]) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.send_header(STAND_IN_HEADER, _STAND_IN_VALUE)
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:
        api: Api | None = {"/v1/chat/completions": "chat", "/v1/responses": "responses",
                           "/v1/messages": "messages"}.get(self.path.split("?")[0])  # type: ignore[assignment]
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            body = None
        if api is None or not isinstance(body, dict):
            message = f"stand-in model: no such endpoint or bad JSON: {self.path}"
            self._json(404 if api is None else 400, error_body("chat", message))
            return
        server: ModelServer = self.server.model  # type: ignore[attr-defined]
        record = ModelRequest(api=api, body=body, stream=bool(body.get("stream")),
                              started_ns=time.monotonic_ns())
        server._record(record)
        try:
            reply = record.reply = server._next_reply(record)
            logger.info("stand-in model: %s %s (stream=%s)", self.command, self.path, record.stream)
            if reply.status != 200:
                self._json(reply.status, error_body(api, "stand-in model: scripted HTTP error"))
            elif not record.stream:
                self._json(200, FORMATS[api].complete(reply, server._ids))
            else:
                self._stream(record, reply, server.tokens_per_second)
        except _HangupError:
            self.close_connection = True
        finally:
            record.finished_ns = time.monotonic_ns()
            record.done.set()

    def _stream(self, record: ModelRequest, reply: Reply, rate: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header(STAND_IN_HEADER, _STAND_IN_VALUE)
        self.end_headers()
        out = _Emitter(self, record, reply.tokens_per_second or rate)
        fmt = FORMATS[record.api]
        for payload, name, is_token in fmt.stream(reply, self.server.model._ids):  # type: ignore[attr-defined]
            if is_token:
                if reply.error_after is not None and record.tokens_sent >= reply.error_after:
                    self._fail(out, record.api, reply)
                    return
                out.token(record.tokens_sent, reply)
            out.event(payload, name)
            if is_token:
                record.tokens_sent += 1
        if reply.error_after is not None and record.tokens_sent >= reply.error_after:
            self._fail(out, record.api, reply)
            return
        if record.api == "chat":
            out.send("data: [DONE]\n\n")
        out.send("")  # the zero-length chunk ends the chunked body

    def _fail(self, out: _Emitter, api: Api, reply: Reply) -> None:
        logger.info("stand-in model: scripted %s after %d tokens", reply.error,
                    out.record.tokens_sent)
        if reply.error == "disconnect":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        body = error_body(api, "stand-in model: scripted mid-stream error")
        out.event(body, None if api == "chat" else "error")
        out.send("")




class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], model: ModelServer) -> None:
        self.model = model
        self.stopping = threading.Event()
        self.workers: set[tuple[threading.Thread, socket.socket]] = set()
        self.workers_lock = threading.Lock()
        self.numbers = itertools.count(1)
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(target=self._serve, args=(request, client_address),
                                  name=f"voicesync-sim-model-conn-{next(self.numbers)}",
                                  daemon=True)
        with self.workers_lock:
            self.workers.add((thread, request))
        thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up between keep-alive requests is routine, not worth a traceback.
        logger.debug("stand-in model: connection from %s ended with an error", client_address,
                     exc_info=True)

    def _serve(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self.workers_lock:
                self.workers.discard((threading.current_thread(), request))


class ModelServer:
    """The stand-in model server. Thread-safe; `start()`/`stop()` from any thread.

    Replies come from the script queue (`script()`), else from `responder`, else a
    deterministic echo of the last user message.

    Args:
        host: loopback address to bind (the stand-in refuses anything else).
        port: 0 picks a free port.
        tokens_per_second: the default pace of streamed tokens.
        replies: initial script: replies (or plain strings) served in order.
        responder: called with the `ModelRequest` when the script is empty.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 tokens_per_second: float = 50.0, replies: Iterable[Reply | str] = (),
                 responder: Responder | None = None) -> None:
        if host not in _LOOPBACK:
            raise ValueError(f"The stand-in model binds loopback only, not {host!r}.")
        self.host, self.port = host, port
        self.tokens_per_second = tokens_per_second
        self.responder = responder
        self._script: deque[Reply | str] = deque(replies)
        self._requests: list[ModelRequest] = []
        self._lock = threading.Condition()
        self._ids = itertools.count(1)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- scripting and records -------------------------------------------------------------
    def script(self, *replies: Reply | str) -> None:
        """Queue replies; each request takes the next one."""
        with self._lock:
            self._script.extend(replies)

    def _next_reply(self, record: ModelRequest) -> Reply:
        with self._lock:
            scripted = self._script.popleft() if self._script else None
        if scripted is None:
            scripted = self.responder(record) if self.responder else default_reply(record)
        return Reply(text=scripted) if isinstance(scripted, str) else scripted

    def _record(self, record: ModelRequest) -> None:
        with self._lock:
            self._requests.append(record)
            self._lock.notify_all()

    @property
    def requests(self) -> list[ModelRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def wait_requests(self, count: int, timeout: float = 5.0) -> list[ModelRequest]:
        """Block until `count` requests arrived; raise TimeoutError after `timeout` seconds."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= count, timeout):
                raise TimeoutError(f"The stand-in model got {len(self._requests)} requests, "
                                   f"not {count}, within {timeout} s.")
            return list(self._requests)

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("Start the stand-in model before asking for its URL.")
        return f"http://{self.host}:{self._server.server_address[1]}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    def start(self) -> Self:
        if self._server is None:
            self._server = _Server((self.host, self.port), self)
            self._thread = threading.Thread(target=self._server.serve_forever, args=(_POLL,),
                                            name="voicesync-sim-model", daemon=True)
            self._thread.start()
            logger.info("stand-in model listening on %s (scripted, not a real LLM)", self.url)
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving, hang up on every client, and join the threads (at most `timeout`)."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        deadline = time.monotonic() + timeout
        server.stopping.set()
        server.shutdown()
        with server.workers_lock:
            workers = list(server.workers)
        for _, sock in workers:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for worker, _ in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        thread.join(max(0.0, deadline - time.monotonic()))
        server.server_close()
        self._server = self._thread = None
        logger.info("stand-in model stopped")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
