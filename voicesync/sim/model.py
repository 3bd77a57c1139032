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
import re
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, TypeAlias

from typing_extensions import Self

logger = logging.getLogger(__name__)

__all__ = ["STAND_IN_HEADER", "ModelRequest", "ModelServer", "Reply", "Responder", "ToolCall"]

STAND_IN_HEADER = "X-Voicesync-Stand-In"
_STAND_IN_VALUE = "voicesync stand-in model; replies are scripted, not generated"
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_POLL = 0.05  # how often a wait re-checks for stop(); a client hang-up wakes it at once


@dataclass(frozen=True)
class ToolCall:
    """A tool call the stand-in model makes instead of (or after) text."""

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    id: str = ""

    def arguments_json(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass(frozen=True)
class Reply:
    """One scripted reply.

    Args:
        text: what the model "says", streamed a word at a time.
        tool_calls: tool calls made after the text.
        stall_before: pause before sending token number `stall_before` (0-based).
        stall: how long that pause lasts, in seconds.
        error_after: fail after this many tokens.
        error: how it fails: a provider error event, or a dropped connection.
        status: an HTTP status other than 200 answers with a provider-shaped error body.
        tokens_per_second: overrides the server's token rate for this reply.
    """

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    stall_before: int | None = None
    stall: float = 0.0
    error_after: int | None = None
    error: Literal["event", "disconnect"] = "event"
    status: int = 200
    tokens_per_second: float | None = None


Api: TypeAlias = Literal["chat", "responses", "messages"]


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


def _tokens(text: str) -> list[str]:
    return re.findall(r"\s*\S+", text) or ([text] if text else [])


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
            self._json(404 if api is None else 400, _error_body("chat", message))
            return
        server: ModelServer = self.server.model  # type: ignore[attr-defined]
        record = ModelRequest(api=api, body=body, stream=bool(body.get("stream")),
                              started_ns=time.monotonic_ns())
        server._record(record)
        try:
            reply = record.reply = server._next_reply(record)
            logger.info("stand-in model: %s %s (stream=%s)", self.command, self.path, record.stream)
            if reply.status != 200:
                self._json(reply.status, _error_body(api, "stand-in model: scripted HTTP error"))
            elif not record.stream:
                self._json(200, _FORMATS[api].complete(reply, server._ids))
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
        fmt = _FORMATS[record.api]
        for payload, name, is_token in fmt.stream(reply, self.server.model._ids, out):  # type: ignore[attr-defined]
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
        body = _error_body(api, "stand-in model: scripted mid-stream error")
        out.event(body, None if api == "chat" else "error")
        out.send("")


def _error_body(api: Api, message: str) -> dict[str, Any]:
    if api == "messages":
        return {"type": "error", "error": {"type": "api_error", "message": message}}
    if api == "responses":
        return {"type": "error", "code": "server_error", "message": message, "param": None}
    return {"error": {"type": "server_error", "message": message, "code": "server_error"}}


# A stream format yields (payload, SSE event name, counts-as-a-token) for a reply.
Frames: TypeAlias = Iterator[tuple[dict[str, Any], "str | None", bool]]


class _Format:
    def stream(self, reply: Reply, ids: Iterator[int], out: _Emitter) -> Frames:
        raise NotImplementedError

    def complete(self, reply: Reply, ids: Iterator[int]) -> dict[str, Any]:
        raise NotImplementedError


class _Chat(_Format):
    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": 0,
                "model": "stand-in", "choices": [{"index": 0, "delta": delta,
                                                   "finish_reason": finish}]}

    def stream(self, reply: Reply, ids: Iterator[int], out: _Emitter) -> Frames:
        yield self._chunk({"role": "assistant", "content": ""}), None, False
        for token in _tokens(reply.text):
            yield self._chunk({"content": token}), None, True
        for index, call in enumerate(reply.tool_calls):
            head = {"index": index, "id": call.id or f"call_{next(ids)}", "type": "function",
                    "function": {"name": call.name, "arguments": ""}}
            yield self._chunk({"tool_calls": [head]}), None, False
            args = {"index": index, "function": {"arguments": call.arguments_json()}}
            yield self._chunk({"tool_calls": [args]}), None, False
        yield self._chunk({}, "tool_calls" if reply.tool_calls else "stop"), None, False

    def complete(self, reply: Reply, ids: Iterator[int]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": c.id or f"call_{next(ids)}", "type": "function",
                 "function": {"name": c.name, "arguments": c.arguments_json()}}
                for c in reply.tool_calls]
        return {"id": "chatcmpl-standin", "object": "chat.completion", "created": 0,
                "model": "stand-in", "choices": [{
                    "index": 0, "message": message,
                    "finish_reason": "tool_calls" if reply.tool_calls else "stop"}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}


class _Responses(_Format):
    def _items(self, reply: Reply, ids: Iterator[int]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        if reply.text:
            items.append({"id": f"msg_{next(ids)}", "type": "message", "role": "assistant",
                          "status": "completed", "content": [
                              {"type": "output_text", "text": reply.text, "annotations": []}]})
        for c in reply.tool_calls:
            n = next(ids)
            items.append({"id": f"fc_{n}", "type": "function_call", "status": "completed",
                          "call_id": c.id or f"call_{n}", "name": c.name,
                          "arguments": c.arguments_json()})
        return items

    def _response(self, status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": "resp_standin", "object": "response", "created_at": 0, "model": "stand-in",
                "status": status, "output": output, "parallel_tool_calls": True, "tools": [],
                "tool_choice": "auto"}

    def stream(self, reply: Reply, ids: Iterator[int], out: _Emitter) -> Frames:
        seq = itertools.count()

        def ev(kind: str, **data: Any) -> tuple[dict[str, Any], str, bool]:
            return {"type": kind, "sequence_number": next(seq), **data}, kind, False

        yield ev("response.created", response=self._response("in_progress", []))
        items = self._items(reply, ids)
        for index, item in enumerate(items):
            at = {"output_index": index, "item_id": item["id"]}
            if item["type"] == "message":
                yield ev("response.output_item.added", output_index=index,
                         item={**item, "status": "in_progress", "content": []})
                part = {"type": "output_text", "text": "", "annotations": []}
                yield ev("response.content_part.added", **at, content_index=0, part=part)
                for token in _tokens(reply.text):
                    payload, kind, _ = ev("response.output_text.delta", **at, content_index=0,
                                          delta=token, logprobs=[])
                    yield payload, kind, True
                yield ev("response.output_text.done", **at, content_index=0, text=reply.text,
                         logprobs=[])
                yield ev("response.content_part.done", **at, content_index=0,
                         part=item["content"][0])
            else:
                yield ev("response.output_item.added", output_index=index,
                         item={**item, "arguments": "", "status": "in_progress"})
                yield ev("response.function_call_arguments.delta", **at, delta=item["arguments"])
                yield ev("response.function_call_arguments.done", **at,
                         arguments=item["arguments"], name=item["name"])
            yield ev("response.output_item.done", output_index=index, item=item)
        yield ev("response.completed", response=self._response("completed", items))

    def complete(self, reply: Reply, ids: Iterator[int]) -> dict[str, Any]:
        return self._response("completed", self._items(reply, ids))


class _Messages(_Format):
    def _message(self, content: list[dict[str, Any]], stop: str | None) -> dict[str, Any]:
        return {"id": "msg_standin", "type": "message", "role": "assistant", "model": "stand-in",
                "content": content, "stop_reason": stop, "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0}}

    def _stop(self, reply: Reply) -> str:
        return "tool_use" if reply.tool_calls else "end_turn"

    def stream(self, reply: Reply, ids: Iterator[int], out: _Emitter) -> Frames:
        def ev(kind: str, **data: Any) -> tuple[dict[str, Any], str, bool]:
            return {"type": kind, **data}, kind, False

        yield ev("message_start", message=self._message([], None))
        index = 0
        if reply.text:
            yield ev("content_block_start", index=0, content_block={"type": "text", "text": ""})
            for token in _tokens(reply.text):
                yield {"type": "content_block_delta", "index": 0,
                       "delta": {"type": "text_delta", "text": token}}, "content_block_delta", True
            yield ev("content_block_stop", index=0)
            index = 1
        for offset, call in enumerate(reply.tool_calls, start=index):
            block = {"type": "tool_use", "id": call.id or f"toolu_{next(ids)}", "name": call.name,
                     "input": {}}
            yield ev("content_block_start", index=offset, content_block=block)
            yield ev("content_block_delta", index=offset,
                     delta={"type": "input_json_delta", "partial_json": call.arguments_json()})
            yield ev("content_block_stop", index=offset)
        yield ev("message_delta", delta={"stop_reason": self._stop(reply), "stop_sequence": None},
                 usage={"output_tokens": 0})
        yield ev("message_stop")

    def complete(self, reply: Reply, ids: Iterator[int]) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
        content += [{"type": "tool_use", "id": c.id or f"toolu_{next(ids)}", "name": c.name,
                     "input": json.loads(c.arguments_json() or "{}")} for c in reply.tool_calls]
        return self._message(content, self._stop(reply))


_FORMATS: dict[Api, _Format] = {"chat": _Chat(), "responses": _Responses(), "messages": _Messages()}


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
