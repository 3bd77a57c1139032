"""The simulator's control API: HTTP/JSON on loopback, so any program can play the caller.

An agent written in any language registers on the simulator's WebSocket as on the
platform; a test in any language then places calls and plays the caller through this API
(docs/testing.md lists the routes). Requests are served on ``voicesync-sim-control-*``
threads; each call's methods are thread-safe (`SimCall`), so requests may overlap.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from voicesync.sim._record import Frame

if TYPE_CHECKING:
    from collections.abc import Callable

    from voicesync.sim.simcall import SimCall
    from voicesync.sim.simulator import Simulator

logger = logging.getLogger(__name__)

_CALL = re.compile(r"^/v1/calls/([^/]+)(?:/([a-z_]+))?$")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ControlServer:
    """Serves the control API for `sim` on `host:port` (port 0 picks a free one)."""

    def __init__(self, sim: Simulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sim = sim
        api = self

        class Handler(_Handler):
            control = api

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ControlServer:
        """Serve in the background (thread `voicesync-sim-control`). Any thread."""
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="voicesync-sim-control", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving and join the thread. Any thread but a request's own."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- routes -------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str],
               body: dict[str, Any]) -> Any:
        sim = self.sim
        timeout = float(body.get("timeout", query.get("timeout", 10.0)))
        if path == "/v1/agents" and method == "GET":
            return {"agents": [{"agent_id": a.agent_id, "channels": sorted(a.channels)}
                               for a in sim.agents.values()]}
        if path == "/v1/calls" and method == "GET":
            return {"calls": [_call_json(c) for c in sim.calls]}
        if path == "/v1/calls" and method == "POST":
            return self._start(body, timeout)
        if path == "/v1/frames" and method == "GET":
            return _frames(sim.frames_since(int(query.get("since", 0))),
                           int(query.get("since", 0)))
        found = _CALL.match(path)
        if found is None:
            raise ApiError(404, f"no route {method} {path}")
        try:
            call = sim.call(found.group(1))
        except KeyError:
            raise ApiError(404, f"no call {found.group(1)}") from None
        return self._on_call(call, method, found.group(2) or "", query, body)

    def _start(self, body: dict[str, Any], timeout: float) -> Any:
        agent, transport = body.get("agent"), body.get("transport", "phone")
        since = self.sim.mark()  # the greeting's frames come after this
        try:
            if transport == "chat":  # a text session: `say` sends a message (sim/_chat.py)
                call: SimCall = self.sim.start_chat(agent, metadata=body.get("metadata"),
                                                    timeout=timeout)
            elif transport == "whatsapp":
                call = self.sim.start_whatsapp(agent, str(body.get("from", "+15550002222")),
                                               timeout=timeout)
            else:
                call = self.sim.start_call(agent, str(body.get("from", "+15550001111")),
                                           body.get("to"), metadata=body.get("metadata"),
                                           timeout=timeout)
        except (TimeoutError, ValueError, LookupError) as exc:
            raise ApiError(404, f"cannot call {agent or body.get('to')}: {exc}") from None
        except RuntimeError as exc:
            raise ApiError(409, str(exc)) from None
        if body.get("wait_greeting", True) and call.speaking:
            self._idle(call, timeout, since)
        return _call_json(call)

    def _on_call(self, call: SimCall, method: str, action: str, query: dict[str, str],
                 body: dict[str, Any]) -> Any:
        timeout = float(body.get("timeout", query.get("timeout", 10.0)))
        if method == "GET" and action in ("", "transcript"):
            return _call_json(call)
        if method == "GET" and action == "frames":
            since = int(query.get("since", 0))
            frames = self.sim.frames_since(since)
            answer = _frames([f for f in frames if f.call_id == call.call_id], since)
            answer["next"] = since + len(frames)
            return answer
        if method != "POST":
            raise ApiError(405, f"{method} /v1/calls/<id>/{action} is not a route")
        wait = bool(body.get("wait", True))
        if action in ("say", "barge_in"):
            text = str(body.get("text", ""))
            if not text:
                raise ApiError(400, "say/barge_in need a non-empty `text`")
            self._active(call)
            since = self.sim.mark()
            if action == "say":
                barge = body.get("barge_in")
                barged = None
                if isinstance(barge, dict) and barge.get("text"):  # cut the answer, exactly
                    barged = call.arm_barge_in(str(barge["text"]), timeout=timeout,
                                               after_words=int(barge.get("after_words", 1)))
                message_id = call.say(text, timeout=timeout)
                if barged is not None and not barged():
                    raise TimeoutError(f"the bot's answer never reached the barge-in point "
                                       f"within {timeout:g} s")
                if barged is not None:
                    message_id = call.user_message_id
            else:
                message_id = call.barge_in(text, after_words=int(body.get("after_words", 1)),
                                           timeout=timeout)
            reply = self._reply(call, timeout, since) if wait else None
            return {"message_id": message_id, "reply": reply, **_call_json(call)}
        if action == "press":
            self._active(call)
            since = self.sim.mark()
            digits = str(body.get("digits", ""))
            so_far = call.press(digits)
            if digits:  # answer once the keys are on the wire, so a read of frames sees them
                self.sim.wait_frame(event="call.dtmf_received", timeout=timeout, since=since,
                                    direction="out", call_id=call.call_id, digits=so_far)
            if bool(body.get("wait", False)):  # for the answer the keys got, once spoken
                self.sim.wait_frame(event="bot.speaking", timeout=timeout, since=since,
                                    direction="out", call_id=call.call_id)
                self._idle(call, timeout, since)
            return _call_json(call)
        if action == "hangup":
            call.hangup(str(body.get("reason", "hangup")))
            return _call_json(call)
        if action == "wait":
            what = str(body.get("for", "reply"))
            if what == "reply":
                return {"reply": self._reply(call, timeout), **_call_json(call)}
            if what == "idle":
                self._idle(call, timeout)
            elif what == "ended":
                call.wait_ended(timeout)
            else:
                raise ApiError(400, "wait `for` is reply, idle or ended")
            return _call_json(call)
        raise ApiError(404, f"no call action {action!r}")

    @staticmethod
    def _active(call: SimCall) -> None:
        if call.status != "active":
            raise ApiError(409, f"call {call.call_id} is {call.status} ({call.ended_reason})")

    def _reply(self, call: SimCall, timeout: float, since: int = 0) -> str | None:
        try:
            text = call.wait_reply(timeout)
            self._idle(call, timeout, since)
        except RuntimeError:
            return None  # the call ended before the bot answered
        return text

    def _idle(self, call: SimCall, timeout: float, since: int = 0) -> None:
        """The bot is silent, on the wire too: every message it began (since `since`) has
        its `bot.finished`/`bot.interrupted` sent, or the call ended. The call's state turns
        idle before the sender has put the last frame out, and a driver that reads the
        frames, or acts next, must not overtake it."""
        call.wait_idle(timeout)
        begun = {f.get("message_id") for f in self.sim.frames_since(since)
                 if f.direction == "out" and f.event == "bot.speaking"
                 and f.call_id == call.call_id}
        for message_id in begun:
            self.sim.wait_frame(_ends(message_id), timeout, since=since, direction="out",
                                call_id=call.call_id)


def _ends(message_id: object) -> Callable[[Frame], bool]:
    """Matches the frame that ends a bot message's speech, or the call's end."""
    def ended(frame: Frame) -> bool:
        return frame.event == "call.ended" or (
            frame.event in ("bot.finished", "bot.interrupted")
            and frame.get("message_id") == message_id)
    return ended


class _Handler(BaseHTTPRequestHandler):
    control: ControlServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        threading.current_thread().name = "voicesync-sim-control-request"
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise ApiError(400, "the body must be a JSON object")
            status, answer = 200, self.control.handle(method, url.path, query, body)
        except ApiError as exc:
            status, answer = exc.status, {"error": str(exc)}
        except TimeoutError as exc:
            status, answer = 504, {"error": str(exc)}
        except (ValueError, RuntimeError) as exc:
            status, answer = 400, {"error": str(exc)}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("control: " + format, *args)


def _call_json(call: SimCall) -> dict[str, Any]:
    return {"call_id": call.call_id, "agent_id": call.agent_id, "status": call.status,
            "ended_reason": call.ended_reason, "direction": call.direction,
            "transport": call.transport,
            "from": call.from_, "to": call.to,
            "transcript": [{"speaker": who, "text": text, "interrupted": cut}
                           for who, text, cut in call.transcript]}


def _frames(frames: list[Frame], since: int) -> dict[str, Any]:
    return {"frames": [{"ts_ns": f.ts_ns, "direction": f.direction, "data": f.data}
                       for f in frames], "next": since + len(frames)}
