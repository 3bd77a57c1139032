"""The core's seams: the dispatcher, the reader, the heartbeat and an agent with its calls
driven by small stand-ins for their ports (`Host`, `Session`, `Link`, `Uplink`), with no
Client and no socket.

If one of them reached into a Client again, these stand-ins would not be enough and the
tests would fail (mypy checks that `ClientPorts` implements all four).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, cast

import pytest
from helpers import until

from voicesync._connection import Reader
from voicesync._control import Control
from voicesync._dispatch import Dispatcher
from voicesync._heartbeat import Heartbeat
from voicesync._port import Port
from voicesync._timer import Timers
from voicesync._uplink import Uplink
from voicesync.agent import Agent
from voicesync.call import Call
from voicesync.errors import (
    AuthenticationError,
    NotConnectedError,
    RequestTimeout,
    ServerError,
    VoiceSyncError,
)
from voicesync.testing import FakeTransport


class StubHost:
    """A `Host` that records what the dispatcher does."""

    def __init__(self) -> None:
        self.sent: list[Mapping[str, Any]] = []
        self.reports: list[tuple[BaseException, bool]] = []
        self.refusals: list[AuthenticationError] = []
        self.answers: list[Mapping[str, Any]] = []
        self.connects: list[Mapping[str, Any]] = []
        self.runs: list[tuple[str, int]] = []
        self.broken = False
        self.by_id: dict[str, Agent] = {}
        self.fed: list[Mapping[str, Any]] = []
        self.handled: set[str] = set()
        self.calls: dict[str, Call] = {}

    def agent(self, agent_id: str) -> Agent | None:
        if self.broken:
            raise RuntimeError("host failure")
        return self.by_id.get(agent_id)

    def agents(self) -> list[Agent]:
        return list(self.by_id.values())

    def call(self, call_id: str) -> Call | None:
        return self.calls.get(call_id)

    def add_call(self, call: Call) -> None: ...
    def remove_call(self, call: Call) -> None: ...

    def handlers(self, name: str) -> tuple[Any, ...]:
        return (print,) if name in self.handled else ()

    def emit_client(self, name: str, *args: Any) -> None:
        self.runs.append(("client", 0))

    def feed(self, frame: Mapping[str, Any]) -> None:
        self.fed.append(frame)

    def run(self, lane: str, handlers: tuple[Any, ...], args: tuple[Any, ...],
            received_at: float, size: int = 0) -> None:
        self.runs.append((lane, size))

    def send(self, frame: Mapping[str, Any]) -> bool:
        self.sent.append(frame)
        return True

    def report(self, exc: BaseException, *, log: bool = False) -> None:
        self.reports.append((exc, log))

    def handler_failed(self, exc: BaseException, lane: str) -> None: ...

    def connected(self, frame: Mapping[str, Any]) -> None:
        self.connects.append(frame)

    def refused(self, error: AuthenticationError) -> None:
        self.refusals.append(error)

    def register_later(self, agent: Agent, delay: float) -> None: ...

    def answered(self, frame: Mapping[str, Any]) -> None:
        self.answers.append(frame)


def test_the_dispatcher_works_through_its_host_alone() -> None:
    host = StubHost()
    dispatcher = Dispatcher(host)
    dispatcher.handle({"event": "ping"}, 0.0)
    dispatcher.handle({"event": "connected", "org_id": "o"}, 0.0)
    dispatcher.handle({"event": "history.data", "request_id": "r1"}, 0.0)
    dispatcher.handle({"event": "error", "code": "UNAUTHORIZED", "message": "no"}, 0.0)
    dispatcher.handle({"event": "error", "code": "INVALID_KEY", "message": "bad key"}, 0.0)
    assert host.sent == [{"event": "pong"}]
    assert [f["org_id"] for f in host.connects] == ["o"]
    assert [f["request_id"] for f in host.answers] == ["r1"]
    assert len(host.refusals) == 1  # only the documented refusal
    assert [type(exc) for exc, _ in host.reports] == [ServerError]


def test_a_failing_host_is_reported_and_the_dispatcher_never_raises() -> None:
    host = StubHost()
    host.broken = True
    Dispatcher(host).handle({"event": "agent.created", "agent_id": "a"}, 0.0)
    (error, logged), = host.reports
    assert isinstance(error, VoiceSyncError) and "host failure" in str(error) and logged


def test_lanes_are_charged_the_size_of_the_frame_being_applied_and_nothing_else() -> None:
    host = StubHost()
    agent = host.by_id["desk"] = Agent("desk")
    host.handled.add("channel.added")
    dispatcher = Dispatcher(host)
    dispatcher.handle({"event": "channel.added", "agent_id": "desk"}, 0.0, 321)
    # After the frame (the reader ending calls on a drop) or on another thread (close(),
    # remove_agent()), events are not charged a frame's size.
    dispatcher._emit_agent(agent, "channel.added", (), 0.0)
    assert host.runs == [("desk", 321), ("desk", 0)]


class StubSession:
    """A `Session` over one FakeTransport, applying frames itself."""

    url = "ws://127.0.0.1:9/client"
    api_key = "test-key"
    connect_timeout = 1.0
    reconnect = False
    max_frame_bytes = 1 << 20

    def __init__(self, fake: FakeTransport) -> None:
        self.fake = fake
        self.control = Control()
        self.current: Port | None = None
        self.connected = threading.Event()
        self.applied: list[tuple[str, int]] = []
        self.received_texts: list[str] = []
        self.drops: list[tuple[str, bool]] = []
        self.gave_up_with: list[VoiceSyncError] = []

    def open_port(self) -> Port:
        return self.fake

    def publish(self, port: Port | None) -> None:
        self.current = port

    def port(self) -> Port | None:
        return self.current

    def is_connected(self) -> bool:
        return self.connected.is_set()

    def dead_reason(self) -> str | None:
        return None

    def refusal(self) -> AuthenticationError | None:
        return None

    def sent(self, text: str) -> None: ...

    def received(self, text: str, at: float) -> None:
        self.received_texts.append(text)

    def count(self, name: str) -> None: ...

    def apply(self, frame: dict[str, Any], received_at: float, size: int) -> None:
        self.applied.append((frame["event"], size))
        if frame["event"] == "connected":
            self.connected.set()

    def dropped(self, reason: str, *, was_connected: bool) -> None:
        self.drops.append((reason, was_connected))
        self.connected.clear()

    def gave_up(self, error: VoiceSyncError, *, initial: bool) -> None:
        self.gave_up_with.append(error)

    def backoff(self, attempt: int) -> float:
        return 0.01

    def reconnecting(self, attempt: int, delay: float) -> None: ...


def test_the_reader_works_through_its_session_alone() -> None:
    fake = FakeTransport()
    session = StubSession(fake)
    reader = Reader(session, first_timeout=1.0)
    reader.start()
    until(session.connected.is_set, 2.0, "connected")
    assert fake.sent[0] == {"event": "connect", "api_key": "test-key"}
    fake.push('{"event": "call.updated", "call_id": "c1", "echo": "test-key"}')
    until(lambda: len(session.applied) == 2, 2.0, "the pushed frame")
    assert session.applied[1][0] == "call.updated" and session.applied[1][1] > 0
    assert "test-key" not in session.received_texts[1]  # redacted before anyone sees it
    fake.drop()  # reconnect is off: the reader gives up and ends
    assert reader.join(2.0)
    assert session.drops == [("connection_lost", True)]
    assert len(session.gave_up_with) == 1 and session.current is None


class StubLink:
    """A `Link` whose server went silent long ago."""

    ping_interval = 0.02
    ping_timeout = 0.05
    send_timeout = 0.025

    def __init__(self) -> None:
        self.pings = 0
        self.dead = threading.Event()
        self.reasons: list[str] = []

    def is_connected(self) -> bool:
        return not self.dead.is_set()

    def port(self) -> Port | None:
        return None

    def last_rx(self) -> float:
        return 0.0  # time.monotonic() long ago

    def send(self, frame: Mapping[str, Any]) -> bool:
        self.pings += frame.get("event") == "ping"
        return True

    def declare_dead(self, reason: str) -> None:
        self.reasons.append(reason)
        self.dead.set()


def test_the_heartbeat_works_through_its_link_alone() -> None:
    link = StubLink()
    heartbeat = Heartbeat(link)
    heartbeat.start()
    try:
        assert link.dead.wait(2.0)
    finally:
        heartbeat.stop(1.0)
    assert link.reasons == ["ping_timeout"]


class StubUplink:
    """An `Uplink` that records what an agent and its calls send and report."""

    def __init__(self) -> None:
        self.connection = cast(Port, object())  # what calls are pinned to
        self.connected = True
        self.sent: list[tuple[Mapping[str, Any], Port | None]] = []
        self.reports: list[BaseException] = []
        self.timers = Timers()

    def send(self, frame: Mapping[str, Any], *, via: Port | None = None) -> bool:
        self.sent.append((frame, via))
        return True

    def port(self) -> Port | None:
        return self.connection

    def require_connection(self, what: str) -> None:
        if not self.connected:
            raise NotConnectedError(f"{what}: stub down")

    def link_state(self) -> str:
        return "the stub link is up"

    def report(self, exc: BaseException, *, log: bool = False, loud: bool = False) -> None:
        self.reports.append(exc)

    def request(self, call_id: str, send: Any, event: str, response: str, *,
                timeout: float, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        send({"event": event, "call_id": call_id, **payload})
        return {"event": response, "messages": []}


def test_an_agent_and_its_calls_work_through_their_uplink_alone() -> None:
    uplink = StubUplink()
    agent = Agent("support")
    agent._attach(cast(Any, None), cast(Uplink, uplink))
    agent.add_webrtc()
    assert uplink.sent == []  # queued until the agent is acknowledged
    agent._acknowledged()
    assert [f["event"] for f, _ in uplink.sent] == ["channel.add"]
    call = Call(agent, "c1", {})
    call.say("hello")
    frame, via = uplink.sent[-1]
    assert frame["event"] == "bot.reply" and via is uplink.connection
    assert call.get_history() == []
    with pytest.raises(RequestTimeout, match="the stub link is up"):
        agent.dial("+15550100", from_="+15550199", timeout=0.05)
    uplink.connected = False
    with pytest.raises(NotConnectedError):
        agent.wait_ready(timeout=1.0)
    uplink.timers.stop(1.0)


def test_an_observer_sees_a_known_calls_frame_after_its_handlers_are_queued() -> None:
    host, uplink = StubHost(), StubUplink()
    agent = Agent("desk")
    agent._attach(cast(Any, None), cast(Uplink, uplink))
    call = host.calls["c1"] = Call(agent, "c1", {})
    host.handled.add("call.dtmf_received")
    dispatcher = Dispatcher(host)
    seen: list[tuple[Call, str, int]] = []
    dispatcher.observe("call.dtmf_received",
                       lambda c, frame: seen.append((c, frame["digit"], len(host.runs))))
    dispatcher.handle({"event": "call.dtmf_received", "call_id": "c1", "digit": "5"}, 0.0)
    dispatcher.handle({"event": "call.dtmf_received", "call_id": "c2", "digit": "6"}, 0.0)
    dispatcher.handle({"event": "bot.word", "call_id": "c1", "word": "hi"}, 0.0)
    assert seen == [(call, "5", 1)]  # after its handlers; not for an unknown call
    uplink.timers.stop(1.0)
