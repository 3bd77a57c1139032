"""Client: one WebSocket to the platform, its agents, and the threads that serve them."""

from __future__ import annotations

import ipaddress
import logging
import os
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from typing_extensions import Self

from voicesync import _codec
from voicesync._backoff import Backoff
from voicesync._connection import Reader
from voicesync._control import Control
from voicesync._dispatch import Dispatcher
from voicesync._heartbeat import Heartbeat
from voicesync._lanes import Lanes
from voicesync._listeners import Handler, Listeners, register
from voicesync._log import debug_enabled, redact
from voicesync._requests import Requests
from voicesync._rest import rest_get
from voicesync._throttle import Throttled, clip
from voicesync._tools import run_tool_calls
from voicesync.agent import Agent
from voicesync.call import Call
from voicesync.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionClosedError,
    ConnectTimeout,
    EventsDroppedError,
    VoiceSyncError,
)
from voicesync.events import ToolCall

logger = logging.getLogger(__name__)

DEFAULT_URL = "wss://voice.pinecall.io"
_LOCAL_KEY = "local-dev"  # what a loopback simulator accepts when no key is configured
_CLIENT_LANE = "voicesync-client"
_ABANDON_MARGIN = 0.1  # seconds a failed connect() may take past its timeout to clean up


@dataclass(frozen=True)
class ClientStats:
    """Counters and the handler dispatch lag (frame received → handler start)."""

    frames_received: int
    frames_sent: int
    malformed_frames: int
    oversize_frames: int
    dropped_events: int
    handler_errors: int
    reconnects: int
    active_calls: int
    handler_threads: int
    dispatch_lag_p50_ms: float
    dispatch_lag_p99_ms: float
    dispatch_lag_max_ms: float


class Client:
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
        allow_insecure: permit ``ws://`` to a non-loopback host.
        tls_verify: set False only for a development server with a self-signed cert.
        ssl_context: a custom TLS context (e.g. your own CA).
        http_url: REST base URL; derived from `url` by default.
    """

    def __init__(
        self, api_key: str | None = None, url: str | None = None, *, reconnect: bool = True,
        ping_interval: float = 5.0, ping_timeout: float = 15.0, connect_timeout: float = 10.0,
        max_frame_bytes: int = 1 << 20, allow_insecure: bool = False, tls_verify: bool = True,
        ssl_context: ssl.SSLContext | None = None, http_url: str | None = None,
        backoff: Backoff | None = None, max_handler_threads: int = 1000,
    ) -> None:
        base = (url or os.environ.get("PINECALL_URL") or DEFAULT_URL).strip()
        self.url, derived_http = _endpoints(base)
        self.http_url = (http_url or derived_http).rstrip("/")
        loopback = _is_loopback(self.url)
        if self.url.startswith("ws://") and not loopback and not allow_insecure:
            raise ConfigurationError(
                f"refusing unencrypted {self.url}: use wss://, or pass allow_insecure=True")
        key = api_key or os.environ.get("PINECALL_API_KEY") or (_LOCAL_KEY if loopback else None)
        if not key:
            raise ConfigurationError(
                "no API key: pass Client(api_key=...) or set PINECALL_API_KEY (or point "
                "url= at a local voicesync.sim simulator)")
        if ping_interval <= 0 or ping_timeout <= ping_interval:
            raise ConfigurationError("need 0 < ping_interval < ping_timeout")
        self._api_key = key
        self.reconnect = reconnect
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.connect_timeout = connect_timeout
        self.max_frame_bytes = max_frame_bytes
        self._ssl_context = _tls_context(ssl_context, tls_verify) if self.url.startswith(
            "wss://") else None
        self._backoff = backoff or Backoff()
        self._lock = threading.RLock()
        self._agents: dict[str, Agent] = {}
        self._calls_by_id: dict[str, Call] = {}
        self._listeners = Listeners()
        self._lanes = Lanes(on_error=self._handler_failed, max_workers=max_handler_threads)
        self._requests = Requests()
        self._dispatcher = Dispatcher(self)
        self._counts: dict[str, int] = dict.fromkeys(
            ("frames_received", "frames_sent", "malformed_frames", "oversize_frames",
             "handler_errors", "reconnects"), 0)
        self._transport: Any = None
        self._control = Control()
        self._send_timeout = ping_timeout / 2  # no byte taken this long: the peer is dead
        self._rx_bytes = 0  # size of the frame the reader is applying
        self._lost_reports = Throttled(logger)
        self._reader: Reader | None = None
        self._heartbeat: Heartbeat | None = None
        self._connected = threading.Event()
        self._stopping = threading.Event()
        self._finished = threading.Event()
        self._auth_error: AuthenticationError | None = None
        self._dead_reason: str | None = None
        self._last_rx = time.monotonic()
        self._closed = False
        self._unreported_drops = 0
        self._drop_report_due = False
        self._last_drop_report = 0.0

    # ------------------------------------------------------------------ lifecycle

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
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._closed:
                raise ConnectionClosedError("this client is closed; create a new Client")
            reader = self._reader
            if reader is not None and reader.stopping.is_set():
                reader.join(deadline - time.monotonic())  # an abandoned attempt, ending
            if reader is None or not reader.alive:
                self._finished.clear()
                self._auth_error = None
                self._control.restart()
                reader = self._reader = Reader(
                    self, first_timeout=min(timeout, self.connect_timeout))
                if self._heartbeat is None:
                    self._heartbeat = Heartbeat(self)
                    self._heartbeat.start()
                reader.start()
        while not self._connected.wait(min(0.05, max(0.0, deadline - time.monotonic()))):
            if self._finished.is_set() or self._closed:
                self._abandon(reader, deadline)
                raise reader.final_error or ConnectionClosedError(
                    "the client was closed while connecting", reason="client_disconnect")
            if time.monotonic() >= deadline:
                self._abandon(reader, deadline)
                raise ConnectTimeout(
                    f"not connected to {self.url} within {timeout:g} s", url=self.url)
        return self

    def _abandon(self, reader: Reader, deadline: float) -> None:
        """A connect() that failed: stop the attempt, its socket and the threads it
        started, within a small margin past `deadline`."""
        reader.stop()
        reader.join(deadline + _ABANDON_MARGIN - time.monotonic())
        with self._lock:
            if self._reader is not reader or self._connected.is_set():
                return  # another connect() took over, or it connected after all
            heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.stop(max(0.0, deadline + _ABANDON_MARGIN - time.monotonic()))
        self._control.stop(0.0)

    def close(self, timeout: float = 2.0) -> None:
        """Close the socket, end every call locally and stop voicesync's threads.

        Idempotent; any thread, including handlers, `on_abort` callbacks and signal
        handlers. Returns within `timeout` in every state (connecting, open, a peer
        that stopped reading, a silent peer, a redial in progress): the socket is shut
        down first (a close frame is sent only if the writer is idle), running handlers
        get up to half of `timeout` to return, and threads still running after that are
        logged (they are daemon threads). It never waits for the thread it runs on.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._stopping.set()
            reader = self._reader
            if reader is not None:
                reader.stop()
            if (reader is not None and not reader.join(deadline - time.monotonic() - 0.2)
                    and not reader.is_current):
                logger.warning("the reader thread did not stop in time")
            if reader is None or reader.alive:
                self._on_disconnected("client_disconnect",
                                      was_connected=self._connected.is_set())
            if self._heartbeat is not None:
                self._heartbeat.stop(max(0.0, deadline - time.monotonic() - 0.1))
            # Deferred abort steps (end frames, on_abort callbacks) and running handlers
            # share half the budget (their streams were aborted by the close, so a
            # well-behaved loop exits at once); the rest is margin, so a loaded machine
            # still returns within `timeout`.
            handlers_until = min(deadline - 0.1, time.monotonic() + timeout / 2)
            self._control.stop(max(0.0, (handlers_until - time.monotonic()) / 2))
            stuck = self._lanes.close(handlers_until)
            if stuck:
                logger.warning("closed with %d handler(s) still running: %s", len(stuck),
                               ", ".join(stuck[:5]))
        finally:
            self._finished.set()

    def run_forever(self) -> None:
        """Block until `close()` (from another thread or a handler) or Ctrl-C.

        Raises the error that ended the connection for good (refused key,
        displacement), if any. Main thread or any other.
        """
        try:
            while not self._finished.wait(0.5):
                pass
        except KeyboardInterrupt:
            logger.info("interrupted; closing")
        finally:
            by_user = self._closed  # read before our own close() below sets it
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
        """The agents of this client by id (a snapshot)."""
        with self._lock:
            return dict(self._agents)

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
            agent._attach(self)
            self._agents[agent.id] = agent
        if self._connected.is_set():
            self._register(agent)
        return agent

    def remove_agent(self, agent_id: str) -> Agent | None:
        """Forget an agent: its calls end locally (``agent_removed``); nothing is sent.

        The platform keeps the registration until the socket closes (there is no
        unregister command, PROTOCOL.md §2.3). Any thread.
        """
        with self._lock:
            agent = self._agents.pop(agent_id, None)
        if agent is not None:
            for call in agent._pop_all_calls():
                self._dispatcher._end_call(call, "agent_removed", None, time.monotonic())
            agent._unregistered()
        return agent

    def on(self, name: str, fn: Handler | None = None) -> Any:
        """Register a handler for `name` across every agent and call (or a decorator).

        Client events: ``connected()``, ``disconnected(reason)``,
        ``reconnecting(attempt, delay)``, ``error(exc)``.
        """
        return register(self._listeners, name, fn)

    def off(self, name: str, fn: Handler | None = None) -> None:
        self._listeners.remove(name, fn)

    def send(self, frame: Mapping[str, Any]) -> bool:
        """Send a raw frame now (escape hatch, unqueued). False if not connected."""
        if not isinstance(frame.get("event"), str):
            raise ConfigurationError("a frame needs a string 'event' field")
        return self._send(frame)

    def stats(self) -> ClientStats:
        """A snapshot of counters and dispatch lag; any thread."""
        p50, p99 = self._lanes.lag.percentiles(0.5, 0.99)
        with self._lock:
            counts = dict(self._counts)
            active = len(self._calls_by_id)
        return ClientStats(
            counts["frames_received"], counts["frames_sent"], counts["malformed_frames"],
            counts["oversize_frames"], self._lanes.dropped, counts["handler_errors"],
            counts["reconnects"], active, self._lanes.threads, p50 * 1e3, p99 * 1e3,
            self._lanes.lag.maximum * 1e3)

    # ------------------------------------------------------------------ internals: sending

    def _send(self, frame: Mapping[str, Any]) -> bool:
        transport = self._transport
        if transport is None:
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
        self._count("frames_sent")
        return True

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def _register(self, agent: Agent) -> None:
        if self._connected.is_set():
            self._send(agent.create_frame())

    def _schedule(self, delay: float, fn: Any) -> None:
        if self._heartbeat is not None:
            self._heartbeat.schedule(delay, fn)

    # ------------------------------------------------------------------ internals: events

    def _run(self, lane: str, handlers: tuple[Handler, ...], args: tuple[Any, ...],
             received_at: float) -> None:
        def invoke() -> None:
            for handler in handlers:
                try:
                    handler(*args)
                except Exception as exc:
                    self._handler_failed(exc, lane)

        size = self._rx_bytes if self._reader is not None and self._reader.is_current else 0
        if not self._lanes.submit(lane, invoke, received_at=received_at,
                                  size=size) and not self._closed:
            self._dropped(lane)

    def _dropped(self, lane: str) -> None:
        """Count a dropped event; report the first at once, then at most once a second.

        Reports go through the `error` event on the heartbeat thread, slow-consumer
        style, so a flood is not answered with a flood. Drops of the `error` lane itself
        are counted and logged only.
        """
        if lane == _CLIENT_LANE:
            self._lost_reports.warning("error handlers are too far behind: a report was dropped")
            return
        with self._lock:
            self._unreported_drops += 1
            if self._drop_report_due:
                return
            self._drop_report_due = True
            delay = max(0.0, self._last_drop_report + 1.0 - time.monotonic())
        if self._heartbeat is not None:
            self._heartbeat.schedule(delay, self._report_drops)
        else:
            self._report_drops()

    def _report_drops(self) -> None:
        with self._lock:
            count, self._unreported_drops = self._unreported_drops, 0
            self._drop_report_due = False
            self._last_drop_report = time.monotonic()
        if count:
            total = self._lanes.dropped
            logger.warning("%d event(s) dropped: handlers too far behind (%d in all)", count,
                           total)
            self._emit_client("error", EventsDroppedError(
                f"{count} event(s) dropped because a call's handlers were more than "
                f"{self._lanes.max_backlog} events or {self._lanes.max_backlog_bytes >> 20} MiB "
                f"behind ({total} in all); keep handlers short or hand long work to your "
                "own threads", count=count, total=total))

    def _emit_client(self, name: str, *args: Any) -> None:
        handlers = self._listeners.get(name)
        if handlers:
            self._run(_CLIENT_LANE, handlers, args, time.monotonic())

    def _report(self, exc: BaseException, *, log: bool = False) -> None:
        if log:
            logger.error("%s", clip(str(exc)))
        else:
            logger.info("reported: %s", clip(str(exc)))
        self._emit_client("error", exc)

    def _handler_failed(self, exc: BaseException, lane: str) -> None:
        self._count("handler_errors")
        logger.error("a handler for %s raised", lane, exc_info=exc)
        if lane != _CLIENT_LANE:
            self._emit_client("error", exc)

    # ------------------------------------------------------------------ internals: state

    def _resolve_agent(self, agent_id: str) -> Agent | None:
        """exact id → the part after the last ':' → slug (PROTOCOL.md §2.7)."""
        agents = self._agents
        agent = agents.get(agent_id)
        if agent is None and ":" in agent_id:
            agent_id = agent_id.rsplit(":", 1)[1]
            agent = agents.get(agent_id)
        if agent is None:
            slug = _codec.slugify(agent_id)
            agent = next((a for a in list(agents.values()) if a.slug == slug), None)
        return agent

    def _add_call(self, agent: Agent, call: Call) -> None:
        with self._lock:
            self._calls_by_id[call.id] = call
        agent._add_call(call)

    def _remove_call(self, call: Call) -> None:
        with self._lock:
            if self._calls_by_id.get(call.id) is call:
                del self._calls_by_id[call.id]
        call.agent._pop_call(call.id)

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
        if self._stopping.is_set():
            reason = "client_disconnect"
        self._connected.clear()
        for agent in list(self._agents.values()):
            agent._unregistered()
            for call in agent._pop_all_calls():
                self._dispatcher._end_call(call, reason, None, time.monotonic())
        self._requests.fail_all()
        if was_connected:
            if not self._stopping.is_set():
                self._count("reconnects")
            logger.info("disconnected: %s", reason)
            self._emit_client("disconnected", reason)

    def _declare_dead(self, reason: str) -> None:
        self._dead_reason = reason
        transport = self._transport
        if transport is not None:
            transport.shutdown()

    def _auth_failed(self, error: AuthenticationError) -> None:
        self._auth_error = error
        self._report(error)

    def _reader_stopped(self, error: VoiceSyncError, *, initial: bool) -> None:
        if not initial:
            self._report(error)
        self._finished.set()

    # ------------------------------------------------------------------ internals: services

    def _request(self, call: Call, event: str, response: str, timeout: float,
                 payload: Mapping[str, Any]) -> Mapping[str, Any]:
        request_id = self._requests.new_id()
        pending = self._requests.open(request_id, event, response, call.id)
        frame = {"event": event, "call_id": call.id, "request_id": request_id, **payload}
        if not call.send(frame):
            pending.done.set()
        return self._requests.wait(request_id, pending, timeout)

    def _rest_get(self, path: str, params: Mapping[str, str], timeout: float) -> dict[str, Any]:
        return rest_get(self.http_url + path, params, self._api_key, timeout)

    def _run_tools(self, event: ToolCall, call: Call) -> None:
        run_tool_calls(event, call)

    def __repr__(self) -> str:
        state = "connected" if self.connected else "closed" if self._closed else "disconnected"
        return f"<Client {self.url} {state} agents={len(self._agents)} api_key=***>"


def _endpoints(base: str) -> tuple[str, str]:
    """(WebSocket URL ending in /client, REST base URL) from one base URL (§1.1)."""
    if base.startswith("http"):
        base = "ws" + base[4:]
    if not base.startswith(("ws://", "wss://")):
        raise ConfigurationError(f"url must start with wss://, ws://, https:// or http://: {base}")
    base = base.rstrip("/")
    if base.endswith("/client"):
        base = base[: -len("/client")]
    return base + "/client", "http" + base[2:]


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _tls_context(context: ssl.SSLContext | None, verify: bool) -> ssl.SSLContext:
    if context is not None:
        return context
    context = ssl.create_default_context()
    if not verify:
        logger.warning("TLS certificate verification is OFF (tls_verify=False)")
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
