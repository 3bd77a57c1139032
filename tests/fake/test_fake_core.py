"""The connection core on `voicesync.testing.FakeTransport`: no sockets, fast.

Lifecycle, registration, aborts and their hand-off to the control thread, drops and
redials, run in milliseconds each; the same behaviours over real sockets are in
tests/reliability/.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from helpers import sdk_threads

import voicesync
from voicesync._backoff import Backoff
from voicesync.call import Call
from voicesync.events import Turn
from voicesync.reply import ReplyStream
from voicesync.testing import FakeTransport


@pytest.fixture
def fake() -> FakeTransport:
    return FakeTransport()


@pytest.fixture
def client(fake: FakeTransport) -> Iterator[voicesync.Client]:
    before = set(sdk_threads())
    c = fake.attach(voicesync.Client(
        api_key="test", url="ws://127.0.0.1:9", ping_interval=5.0, ping_timeout=15.0,
        backoff=Backoff(initial=0.01, maximum=0.02)))
    yield c
    c.close(timeout=1.0)
    deadline = time.monotonic() + 2.0
    while set(sdk_threads()) - before and time.monotonic() < deadline:
        threading.Event().wait(0.01)
    assert set(sdk_threads()) <= before, sdk_threads()


def _call(fake: FakeTransport, call_id: str = "CA1") -> dict[str, str]:
    ids = {"agent_id": "support", "call_id": call_id}
    fake.push({"event": "call.started", **ids, "session_id": call_id, "from": "+1555000",
               "to": "+1555001", "direction": "inbound", "transport": "phone"})
    return ids


def _streaming_agent(client: voicesync.Client) -> tuple[voicesync.Agent, list[ReplyStream]]:
    agent = client.agent("support")
    streams: list[ReplyStream] = []
    started = threading.Condition()

    @agent.on("turn.end")
    def answer(turn: Turn, call: Call) -> None:
        with call.reply_stream(turn) as stream:
            with started:
                streams.append(stream)
                started.notify_all()
            while stream.write("word ") and not stream.aborted.wait(0.01):
                pass

    return agent, streams


def _turn(fake: FakeTransport, ids: dict[str, str], message_id: str = "m1") -> None:
    fake.push({"event": "turn.end", **ids, "message_id": message_id, "text": "hi",
               "turn_id": 1})


def _until(predicate: object, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        threading.Event().wait(0.005)


def test_connect_registers_every_agent(fake: FakeTransport, client: voicesync.Client) -> None:
    agent = client.agent("support")
    client.connect(timeout=1.0)
    agent.wait_ready(1.0)
    assert fake.sent[0]["event"] == "connect"
    fake.wait_sent(lambda f: f["event"] == "agent.create" and f["agent_id"] == "support")


def test_a_refused_open_is_raised_and_leaves_no_thread(
        fake: FakeTransport, client: voicesync.Client) -> None:
    fake.refuse = voicesync.AuthenticationError("refused (test)")
    with pytest.raises(voicesync.AuthenticationError):
        client.connect(timeout=1.0)
    fake.refuse = None
    client.connect(timeout=1.0)
    assert client.connected


def test_barge_in_aborts_on_the_reader_and_the_end_frame_follows(
        fake: FakeTransport, client: voicesync.Client) -> None:
    agent, streams = _streaming_agent(client)
    client.connect(timeout=1.0)
    agent.wait_ready(1.0)
    ids = _call(fake)
    _turn(fake, ids)
    _until(lambda: streams)
    stream = streams[0]
    threads: list[str] = []
    stream.on_abort(lambda s: threads.append(threading.current_thread().name))
    fake.push({"event": "bot.interrupted", **ids, "message_id": stream.message_id})
    assert stream.aborted.wait(1.0) and stream.abort_reason == "bot.interrupted"
    fake.wait_sent(lambda f: f.get("message_id") == stream.message_id
                   and f.get("action") == "end")
    _until(lambda: threads)
    assert threads == ["voicesync-control"]


def test_a_drop_aborts_streams_and_the_client_redials(
        fake: FakeTransport, client: voicesync.Client) -> None:
    agent, streams = _streaming_agent(client)
    reasons: list[str] = []
    client.on("disconnected", reasons.append)
    client.connect(timeout=1.0)
    agent.wait_ready(1.0)
    _turn(fake, _call(fake))
    _until(lambda: streams)
    fake.drop(1001, "going away")
    assert streams[0].aborted.wait(1.0) and streams[0].abort_reason == "disconnected"
    _until(lambda: fake.opens == 2 and client.connected)
    _until(lambda: reasons == ["going away"])
    _until(lambda: len([f for f in fake.sent if f["event"] == "agent.create"]) == 2)


def test_close_from_an_on_abort_callback(fake: FakeTransport, client: voicesync.Client) -> None:
    agent, streams = _streaming_agent(client)
    client.connect(timeout=1.0)
    agent.wait_ready(1.0)
    ids = _call(fake)
    _turn(fake, ids)
    _until(lambda: streams)
    streams[0].on_abort(lambda s: client.close())
    fake.push({"event": "bot.interrupted", **ids, "message_id": streams[0].message_id})
    done = threading.Event()
    threading.Thread(target=lambda: (client.run_forever(), done.set()), daemon=True).start()
    assert done.wait(2.0)


def test_only_invalid_key_is_a_refusal(fake: FakeTransport, client: voicesync.Client) -> None:
    errors: list[BaseException] = []
    client.on("error", errors.append)
    client.connect(timeout=1.0)
    fake.push({"event": "error", "code": "UNAUTHORIZED", "error": "INVALID_KEY-ish"})
    _until(lambda: errors)
    assert client.connected and not isinstance(errors[0], voicesync.AuthenticationError)
    fake.push({"event": "error", "code": "INVALID_KEY", "error": "Invalid API key"})
    _until(lambda: not client.connected)
    _until(lambda: isinstance(errors[-1], voicesync.AuthenticationError))
