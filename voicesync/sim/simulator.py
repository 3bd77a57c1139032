"""`Simulator`: the local voice platform, its lifecycle, and the hooks tests drive it with."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from typing_extensions import Self
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from voicesync.sim._chat import TextSessions
from voicesync.sim._clock import Clock
from voicesync.sim._faults import Faults
from voicesync.sim._handlers import handle_text
from voicesync.sim._http import make_process_request
from voicesync.sim._lines import PREFIX as LINE_PREFIX, reach_line
from voicesync.sim._llm import ScriptedLLM
from voicesync.sim._memory import MemoryStore
from voicesync.sim._platform import AgentReg, Platform
from voicesync.sim._record import Direction, Frame, FrameLog, FramePredicate, match
from voicesync.sim._server import NamedConnection, ws_logger
from voicesync.sim._settings import SimSettings
from voicesync.sim._stt_stream import STREAM_PATH, serve_transcription
from voicesync.sim._util import JsonDict, slugify
from voicesync.sim.simcall import SimCall

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class SimAgent:
    """A snapshot of a registered agent: its slug, the id it sent, config and channels."""

    agent_id: str
    raw_id: str
    conn_id: int
    config: JsonDict
    channels: dict[str, JsonDict]


class Simulator(SimSettings, TextSessions, Faults):
    """A faithful local stand-in for the voice platform (docs/protocol.md §9), text only.

    Cheap to construct; `start()` binds (127.0.0.1 by default, port 0 picks a free one)
    and `stop()` closes every connection and joins every `voicesync-sim-*` thread.
    All knobs of `SimSettings` (e.g. `dial_outcome`, `capacity`, `conflict`, `handshake`)
    are plain attributes read when needed. `time_scale` is real seconds per simulated
    second for the platform's limits and timeouts. `virtual_time` speaks without waiting:
    the clock jumps over simulated speech (and `advance()`d silences), so frame timestamps
    measure only the agent's own latency (see `voicesync.sim._clock`).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 words_per_second: float = 2.5, time_scale: float = 1.0,
                 api_key: str | None = None, model: bool = False, record: bool = True,
                 record_limit: int | None = 100_000, virtual_time: bool = False) -> None:
        super().__init__(words_per_second=words_per_second, api_key=api_key)
        self.host = host
        self._port = port
        self._clock = Clock(time_scale, virtual=virtual_time)
        self._log = FrameLog(record_limit, enabled=record, now_ns=self._clock.now_ns)
        self._platform = Platform(self, self._clock, self._log)
        self._want_model = model
        self.model: Any = None
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind and serve in the background. Returns self. Any thread; blocks briefly."""
        if self._server is not None:
            return self
        self._clock.start()
        server = serve(self._serve_connection, self.host, self._port,
                       process_request=make_process_request(self._platform, lambda: self.http_url),
                       compression=None, ping_interval=None, close_timeout=1.0,
                       open_timeout=1.5, max_size=4 << 20, create_connection=NamedConnection,
                       logger=ws_logger)
        self._server = server
        self._port = server.socket.getsockname()[1]
        self._thread = threading.Thread(target=server.serve_forever, name="voicesync-sim-server",
                                        daemon=True)
        self._thread.start()
        if self._want_model:
            self._start_model()
        logger.info("simulator listening on %s", self.url)
        return self

    def _start_model(self) -> None:
        try:
            from voicesync.sim.model import ModelServer
        except ImportError:
            logger.warning("voicesync.sim.model is not available; no stand-in model")
            return
        self.model = ModelServer(host=self.host, port=0)
        self.model.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Close every connection (1001) and stop all threads. Idempotent."""
        server, self._server = self._server, None
        if server is not None:
            # A graceful close can block behind a client that stopped reading (websockets
            # holds its send lock in sendall), so past most of the budget, cut the sockets.
            closer = threading.Thread(target=server.shutdown, name="voicesync-sim-stop",
                                      daemon=True)
            closer.start()
            closer.join(timeout * 0.6)
            if closer.is_alive():
                with self._platform.lock:
                    conns = list(self._platform.conns.values())
                for conn in conns:
                    conn.abort()
                closer.join(timeout * 0.3)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._clock.stop(timeout)
        if self.model is not None:
            self.model.stop()
            self.model = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _serve_connection(self, ws: ServerConnection) -> None:
        threading.current_thread().name = f"voicesync-sim-conn-{ws.id.hex[:8]}"
        if ws.request is not None and ws.request.path.startswith(STREAM_PATH):
            return serve_transcription(ws)  # not an SDK connection: live transcription
        conn = self._platform.add_conn(ws)
        try:
            for message in ws:
                handle_text(self._platform, conn, message)
        except ConnectionClosed:
            pass
        finally:
            self._platform.release_conn(conn)

    # -- addresses and knobs --------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """The WebSocket base URL for `voicesync.Client(url=...)`; any path is accepted."""
        return f"ws://{self.host}:{self._port}"

    @property
    def http_url(self) -> str:
        """The REST base URL (same host and port)."""
        return f"http://{self.host}:{self._port}"

    @property
    def time_scale(self) -> float:
        return self._clock.time_scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        if value <= 0:
            raise ValueError("time_scale must be > 0")
        self._clock.time_scale = value

    @property
    def clock(self) -> Clock:
        """The simulator's clock: `now()`, and `advance()`/`hold()` in virtual mode."""
        return self._clock

    @property
    def memory(self) -> MemoryStore:
        """Agents' memory as ``/api/memory`` serves it; seed it with `remember(...)`."""
        return self._platform.memory

    @property
    def llm(self) -> ScriptedLLM:
        """The scripted model of server-side LLM agents (set `.script` or `.responder`)."""
        return self._platform.llm

    # -- agents and calls -----------------------------------------------------------------

    @property
    def agents(self) -> dict[str, SimAgent]:
        with self._platform.lock:
            return {slug: _snapshot(a) for slug, a in self._platform.agents.items()}

    def wait_agent(self, agent_id: str, timeout: float = 5.0) -> SimAgent:
        """Wait until an agent (any spelling of its id) is registered."""
        slug = slugify(agent_id)
        with self._platform.changed:
            agent = self._wait(lambda: self._platform.agents.get(slug), timeout,
                               f"agent {agent_id!r}")
            return _snapshot(agent)

    def start_call(self, agent: str | None = None, from_: str = "+15550001111",
                   to: str | None = None, *, transport: str = "phone",
                   metadata: JsonDict | None = None, token: str | None = None,
                   extension: str | None = None, timeout: float = 5.0) -> SimCall:
        """An inbound call; returns once `call.started` is sent.

        The agent is `agent`, else the one minted `token` was for, else the owner of the
        number `to` (an agent's phone number or a line). A number with `ringing: true`
        rings first; this waits for the agent to accept it (or for the auto-accept) and
        raises RuntimeError if it is rejected. `extension` is the digits the caller's phone
        sends after the number to a line (``"33"``; a final ``#`` closes the window): the
        call carries them as ``extension``, or, on a line whose extension window is 0, they
        arrive after ``call.started`` as key presses.
        """
        call = self.ring(agent, from_, to, transport=transport, metadata=metadata,
                         token=token, extension=extension, timeout=timeout)
        if not call.wait_started(timeout=max(timeout, self.ring_timeout * self.time_scale + 1)):
            raise RuntimeError(f"call {call.call_id} was {call.status}: {call.ended_reason}")
        return call

    def ring(self, agent: str | None = None, from_: str = "+15550001111",
             to: str | None = None, *, transport: str = "phone",
             metadata: JsonDict | None = None, token: str | None = None,
             extension: str | None = None, timeout: float = 5.0) -> SimCall:
        """Like `start_call`, but returns at once: after `call.ringing` or `call.started`."""
        platform = self._platform
        if token is not None:
            grant = platform.grant(token)
            agent, transport = grant.agent_id, grant.channel
            metadata = {**grant.metadata, **(metadata or {})}
        with platform.changed:
            reg = self._find_agent(agent, to, timeout)
            if to is None:
                phones = [r for r, ch in reg.channels.items() if ch.get("type", "phone") == "phone"]
                to = phones[0] if transport == "phone" and phones else reg.slug
            core = platform.new_call(reg, from_=from_, to=to, transport=transport,
                                     metadata=metadata)
            if reg.slug.startswith(LINE_PREFIX):
                reach_line(core, extension)
            elif transport == "phone" and platform.ringing(reg, to):
                core.ring()
            else:
                core.begin()
            return self._wrap(core)

    def _find_agent(self, agent: str | None, to: str | None, timeout: float) -> AgentReg:
        platform = self._platform
        if agent is not None:
            slug = slugify(agent)
            return self._wait(lambda: platform.agents.get(slug), timeout, f"agent {agent!r}")
        if to is None:
            raise ValueError("start_call needs an agent, a token or a `to` number")
        return self._wait(lambda: platform.agent_for_number(to), timeout, f"an agent on {to}")

    def _wrap(self, core: Any) -> SimCall:
        call: SimCall | None = core.sim_call
        if call is None:
            call = core.sim_call = SimCall(core)
        return call

    @property
    def calls(self) -> list[SimCall]:
        """Every call so far (ended ones included), oldest first."""
        with self._platform.lock:
            return [self._wrap(core) for core in self._platform.all_calls]

    @property
    def active_calls(self) -> list[SimCall]:
        with self._platform.lock:
            return [self._wrap(core) for core in self._platform.calls.values()]

    def call(self, call_id: str) -> SimCall:
        with self._platform.lock:
            for core in self._platform.all_calls:
                if core.call_id == call_id:
                    return self._wrap(core)
        raise KeyError(call_id)

    def wait_call(self, *, to: str | None = None, agent: str | None = None,
                  direction: str | None = None, timeout: float = 5.0) -> SimCall:
        """The most recent call (started or ringing) matching every given field."""
        slug = slugify(agent) if agent is not None else None

        def find() -> SimCall | None:
            for core in reversed(self._platform.all_calls):
                if (core.status != "new" and (to is None or core.to == to)
                        and (slug is None or core.agent_slug == slug)
                        and (direction is None or core.direction == direction)):
                    return self._wrap(core)
            return None

        with self._platform.changed:
            return self._wait(find, timeout, "a matching call")

    def _wait(self, pred: Callable[[], T | None], timeout: float, what: str) -> T:
        deadline = time.monotonic() + timeout
        while (result := pred()) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout:.3g} s waiting for {what}")
            self._platform.changed.wait(remaining)
        return result

    # -- the frame record (§9.8) ----------------------------------------------------------

    @property
    def frames(self) -> list[Frame]:
        """Every frame so far, both directions, in order (bounded by `record_limit`)."""
        return self._log.snapshot()

    def mark(self) -> int:
        """A position in the record: pass it as `since=` to look only at later frames."""
        return self._log.mark()

    def frames_since(self, since: int) -> list[Frame]:
        return self._log.snapshot(since)

    def clear_frames(self) -> None:
        self._log.clear()

    def wait_frame(self, pred: FramePredicate | None = None, timeout: float = 5.0, *,
                   since: int = 0, event: str | None = None,
                   direction: Direction | None = None,
                   call_id: str | None = None, conn_id: int | None = None,
                   **fields: Any) -> Frame:
        """The first recorded frame (at or after `since`) matching `pred` and every field.

        Raises:
            TimeoutError: none arrived within `timeout`.
        """
        fields_match = match(event, direction=direction, call_id=call_id, conn_id=conn_id,
                             **fields)
        return self._log.wait_for(
            lambda f: fields_match(f) and (pred is None or pred(f)), timeout, since)


def _snapshot(agent: AgentReg) -> SimAgent:
    return SimAgent(agent.slug, agent.raw_id, agent.conn.id, dict(agent.config),
                    {k: dict(v) for k, v in agent.channels.items()})
