"""Client: one WebSocket to the platform, its agents, and the threads that serve them."""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from voicesync import _codec
from voicesync._backoff import Backoff
from voicesync._client_ports import ClientPorts
from voicesync._client_rest import ClientRest
from voicesync._connection import Reader
from voicesync._control import Control
from voicesync._dispatch import Dispatcher
from voicesync._endpoints import settings, tls_context
from voicesync._heartbeat import Heartbeat
from voicesync._lanes import Lanes
from voicesync._lifecycle import Lifecycle
from voicesync._listeners import Handler, Listeners, Subscribable
from voicesync._log import debug_enabled, redact
from voicesync._port import PortFactory
from voicesync._recording import ClientRecording
from voicesync._report import Reporter, describe_handler
from voicesync._requests import Requests
from voicesync._stats import ClientStats, Counters, DropReports
from voicesync._timer import Timers
from voicesync._transport import Transport
from voicesync.agent import Agent
from voicesync.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionClosedError,
    VoiceSyncError,
)
from voicesync.lines import ClientLines, is_line_id

if TYPE_CHECKING:  # only for annotations: typing_extensions costs ~5 ms to import
    from typing_extensions import Self

logger = logging.getLogger(__name__)

_CLIENT_LANE = "voicesync-client"


class Client(Subscribable, ClientRest, ClientRecording, ClientLines):
    """A connection to the voice platform that serves one or more agents.

    The constructor does not connect: call `connect()` (or use ``with Client() as c``
    and then `connect()`). A background thread owns the socket; handlers run on
    voicesync handler threads; every public method may be called from any thread.

    Args:
        api_key: the platform key; defaults to ``$PINECALL_API_KEY``. Not needed for
            a simulator on a loopback address.
        url: ``wss://`` base URL; defaults to ``$PINECALL_URL`` or the platform's.
            ``/client`` is appended. ``http(s)://`` is accepted and converted.
        reconnect: redial with jittered exponential backoff after an unexpected drop.
        ping_interval: seconds between client pings while connected.
        ping_timeout: a server silent this long is declared dead and redialled.
        connect_timeout: bound on opening the socket and on the handshake.
        max_frame_bytes: larger inbound frames close the socket with 1009.
        allow_insecure: permit ``ws://`` and ``http://`` to a non-loopback host, for
            `url`, `http_url` and the knowledge-base URL of `rest`
            (``$PINECALL_PLAYGROUND_URL``); logs a warning naming the host: the key then
            travels in the clear.
        tls_verify: set False only for a development server with a self-signed cert.
        ssl_context: a custom TLS context (e.g. your own CA).
        http_url: REST base URL; derived from `url` by default. ``https://``, or
            ``http://`` only on loopback (or with `allow_insecure`).
    """

    _scope = "client"
    _transport_factory: PortFactory = Transport  # voicesync.testing.FakeTransport swaps it

    def __init__(
        self, api_key: str | None = None, url: str | None = None, *, reconnect: bool = True,
        ping_interval: float = 5.0, ping_timeout: float = 15.0, connect_timeout: float = 10.0,
        max_frame_bytes: int = 1 << 20, allow_insecure: bool = False, tls_verify: bool = True,
        ssl_context: ssl.SSLContext | None = None, http_url: str | None = None,
        backoff: Backoff | None = None, max_handler_threads: int = 1000,
    ) -> None:
        self.url, self.http_url, knowledge_url, key = settings(
            url, http_url, api_key, allow_insecure)
        if ping_interval <= 0 or ping_timeout <= ping_interval:
            raise ConfigurationError("need 0 < ping_interval < ping_timeout")
        self._api_key = key
        from voicesync.rest import Rest  # here: `import voicesync` stays fast (issue 14)
        self._rest = Rest(key, self.http_url, knowledge_url=knowledge_url,
                          allow_insecure=allow_insecure)
        self.reconnect = reconnect
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.connect_timeout = connect_timeout
        self.max_frame_bytes = max_frame_bytes
        self._ssl_context = tls_context(ssl_context, tls_verify) if self.url.startswith(
            "wss://") else None
        self._backoff = backoff or Backoff()
        self._lock = threading.RLock()
        self._agents: dict[str, Agent] = {}
        self._listeners = Listeners()
        self._reporter = Reporter(logger, lambda: bool(self._listeners.get("error")),
                                  lambda exc: self._emit_client("error", exc))
        self._lanes = Lanes(on_error=self._handler_failed, max_workers=max_handler_threads)
        self._requests = Requests()
        self._ports = ClientPorts(self)  # what the reader and the dispatcher see of it
        self._dispatcher = Dispatcher(self._ports)
        self._counters = Counters()
        self._transport: Any = None
        self._control = Control()
        self._timers = Timers()  # conflict retries, drop reports, its calls' history saves
        self._send_timeout = ping_timeout / 2  # no byte taken this long: the peer is dead
        self._connected = threading.Event()
        self._life = Lifecycle(
            url=self.url, connected=self._connected, lanes=self._lanes, control=self._control,
            timers=self._timers,
            make_reader=lambda first_dial: Reader(self._ports, first_timeout=first_dial),
            make_heartbeat=lambda: Heartbeat(self._ports),
            end_locally=lambda: self._on_disconnected(
                "client_disconnect", was_connected=self._connected.is_set()))
        self._auth_error: AuthenticationError | None = None
        self._dead_reason: str | None = None
        self._last_rx = time.monotonic()
        self._drops = DropReports(
            self._lanes, self._timers.schedule, self._reporter.problem)

    # ------------------------------------------------------------------ lifecycle

    _reader = property(lambda self: self._life.reader)  # the tests' view of the lifecycle

    @property
    def connected(self) -> bool:
        """True between the server's `connected` and the next drop."""
        return self._connected.is_set()

    def connect(self, timeout: float | None = None) -> Self:
        """Open the socket and block until the server's `connected`. Any thread.

        Idempotent while connecting or connected. Registers every agent already
        added. Raises AuthenticationError, ConnectTimeout or ConnectError within
        `timeout` (plus a few milliseconds); a failed attempt leaves no socket or thread
        behind, and connect() may be called again.
        """
        timeout = self.connect_timeout if timeout is None else timeout
        self._auth_error = None
        self._life.connect(timeout, first_dial=min(timeout, self.connect_timeout))
        return self

    def close(self, timeout: float = 2.0) -> None:
        """Close the socket, end every call locally and stop voicesync's threads.

        Idempotent; any thread, including handlers, `on_abort` callbacks and signal
        handlers. Returns within `timeout` in every state (connecting, open, a peer
        that stopped reading, a silent peer, a redial in progress): the socket is shut
        down first (a close frame is sent only if the writer is idle), running handlers
        get up to half of `timeout` to return, and threads still running after that are
        logged (they are daemon threads). It never waits for the thread it runs on.
        """
        self._stop_recording(time.monotonic() + timeout, lambda: self._life.close(timeout))
        self._end_feeds()

    def run_forever(self) -> None:
        """Block until `close()` (from another thread or a handler) or Ctrl-C.

        Raises the error that ended the connection for good (refused key,
        displacement), if any. Main thread or any other.
        """
        try:
            while not self._life.finished.wait(0.5):
                pass
        except KeyboardInterrupt:
            logger.info("interrupted; closing")
        finally:
            by_user = self._life.closed  # read before our own close() below sets it
            self.close()
        reader = self._reader
        if reader is not None and reader.final_error is not None and not by_user:
            raise reader.final_error

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------------ agents & handlers

    @property
    def agents(self) -> dict[str, Agent]:
        """The agents of this client by id (a snapshot; lines are in `lines`)."""
        with self._lock:
            return {i: a for i, a in self._agents.items() if not is_line_id(i)}

    def agent(self, id: str, **config: Any) -> Agent:
        """Define (or fetch) the agent `id`; it is registered on every (re)connect."""
        with self._lock:
            existing = self._agents.get(id)
        if existing is not None:
            if config:
                logger.warning("agent %s already exists; ignoring new config (use update())", id)
            return existing
        return Agent(id, client=self, **config)

    def add_agent(self, agent: Agent) -> Agent:
        """Attach an Agent instance (e.g. a subclass) and register it if connected."""
        with self._lock:
            if agent.id in self._agents and self._agents[agent.id] is not agent:
                raise ConfigurationError(f"this client already has an agent {agent.id!r}")
            agent._attach(self, self._ports)
            self._agents[agent.id] = agent
        if self._connected.is_set():
            self._register(agent)
        return agent

    def remove_agent(self, agent_id: str) -> Agent | None:
        """Forget an agent: its calls end locally (``agent_removed``); nothing is sent.

        The platform keeps the registration until the socket closes (there is no
        unregister command, docs/protocol.md §2.3). Any thread.
        """
        with self._lock:
            agent = self._agents.pop(agent_id, None)
        if agent is not None:
            for call in agent._pop_all_calls():
                self._dispatcher.end_call(call, "agent_removed", None, time.monotonic())
            agent._unregistered()
        return agent

    def send(self, frame: Mapping[str, Any]) -> bool:
        """Send a raw frame now (escape hatch, unqueued). False if not connected."""
        if not isinstance(frame.get("event"), str):
            raise ConfigurationError("a frame needs a string 'event' field")
        return self._send(frame)

    def stats(self) -> ClientStats:
        """A snapshot of counters and dispatch lag; any thread."""
        return self._counters.snapshot(self._lanes, self._ports.active_calls())

    # ------------------------------------------------------------------ internals: sending

    def _send(self, frame: Mapping[str, Any], *, via: Any = None) -> bool:
        """Send on the current connection; with `via`, only if that is still the one."""
        transport = self._transport
        if transport is None or (via is not None and transport is not via):
            return False
        text = _codec.dumps(frame)
        try:
            if not transport.send(text):
                logger.debug("outbox full: dropped a %s frame", frame.get("event"))
                return False
        except ConnectionClosedError:
            transport.shutdown()  # the reader notices and reconnects
            return False
        if debug_enabled(logger):
            logger.debug(">> %s", redact(text, self._api_key)[:2000])
        if self._recorder is not None:
            self._recorder.sent(text)
        self._counters.add("frames_sent")
        return True

    def _register(self, agent: Agent) -> None:
        if self._connected.is_set():
            self._send(agent.create_frame())

    # ------------------------------------------------------------------ internals: events

    def _run(self, lane: str, handlers: tuple[Handler, ...], args: tuple[Any, ...],
             received_at: float, *, size: int = 0) -> None:
        def invoke() -> None:
            for handler in handlers:
                try:
                    handler(*args)
                except Exception as exc:
                    self._handler_failed(exc, lane, describe_handler(handler, args, lane))

        if not self._lanes.submit(lane, invoke, received_at=received_at,
                                  size=size) and not self._life.closed:
            self._drops.dropped(reporting=lane == _CLIENT_LANE)

    def _emit_client(self, name: str, *args: Any) -> None:
        handlers = self._listeners.get(name)
        if handlers:
            self._run(_CLIENT_LANE, handlers, args, time.monotonic())

    def _handler_failed(self, exc: BaseException, lane: str, where: str | None = None) -> None:
        """User code raised on a voicesync thread (lanes, `_run`, `llm.before`)."""
        self._counters.add("handler_errors")
        self._reporter.handler_failed(exc, where or f"a handler ({lane})", lane,
                                      deliver=lane != _CLIENT_LANE)

    # ------------------------------------------------------------------ internals: state

    def _on_connected(self, frame: Mapping[str, Any]) -> None:
        """Reader thread: `connected` arrived; register every agent (§1.3, §1.7)."""
        if self._connected.is_set():
            return
        self._dead_reason = None
        self._last_rx = time.monotonic()
        self._connected.set()
        logger.info("connected to %s", self.url)
        for agent in list(self._agents.values()):
            self._register(agent)
        self._emit_client("connected")

    def _on_disconnected(self, reason: str, *, was_connected: bool) -> None:
        """Reader thread (or close()): end calls locally, abort streams, re-arm agents."""
        if self._life.stopping.is_set():
            reason = "client_disconnect"
        self._connected.clear()
        for agent in list(self._agents.values()):
            agent._unregistered()
            for call in agent._pop_all_calls():
                self._dispatcher.end_call(call, reason, None, time.monotonic())
        self._requests.fail_all()
        if was_connected:
            if not self._life.stopping.is_set():
                self._counters.add("reconnects")
            logger.info("disconnected: %s", reason)
            self._emit_client("disconnected", reason)

    def _declare_dead(self, reason: str) -> None:
        self._dead_reason = reason
        transport = self._transport
        if transport is not None:
            transport.shutdown()

    def _reader_stopped(self, error: VoiceSyncError, *, initial: bool) -> None:
        if not initial:
            self._reporter.problem(error, loud=True)
        self._life.finished.set()

    def __repr__(self) -> str:
        state = "connected" if self.connected else "closed" if self._life.closed else "disconnected"
        return f"<Client {self.url} {state} agents={len(self._agents)} api_key=***>"


Agent._client_type = Client  # for Agent.run() without a client
