"""Test hooks (§9.8): raw frames, duplicates, drops, withheld acks, the frame record, stop()."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from sim_support import WsClient, barrier, of

from voicesync.sim import Simulator, match


def test_send_raw_frames(sim: Simulator, ws: WsClient) -> None:
    sim.send({"event": "custom.thing", "x": 1})
    assert ws.expect("custom.thing")["x"] == 1
    sim.send("this is not json", conn=sim.connections[0])
    ws.wait_raw("this is not json")
    raw = sim.wait_frame(lambda f: f.raw == "this is not json", direction="out")
    assert raw.data is None


def test_duplicates(sim: Simulator, ws: WsClient) -> None:
    ws.register("support")
    call = sim.start_call("support")
    call.say("hello", duplicate=True)
    ws.reply(call.call_id, "Hi.", call.user_message_id, message_id="msg_d")
    call.wait_reply(5)
    ws.expect("bot.finished", message_id="msg_d")
    assert call.duplicate("message.confirmed")
    assert not call.duplicate("never.sent")
    ws.wait(lambda f: len(of(ws.frames, "message.confirmed")) == 2)
    confirmed = of(ws.frames, "message.confirmed")
    assert confirmed[0] == confirmed[1]
    messages = of(ws.frames, "user.message")
    assert len(messages) == 2 and messages[0] == messages[1]
    call.send_event("call.recording", url="x")
    assert ws.expect("call.recording")["call_id"] == call.call_id


@pytest.mark.parametrize(("code", "reason"), [(4001, "Displaced by new connection"),
                                              (1001, "going away"), (1011, "")])
def test_drop_with_a_chosen_code(sim: Simulator, ws: WsClient, code: int, reason: str) -> None:
    ws.register("support")
    call = sim.start_call("support")
    sim.drop(code=code, reason=reason)
    assert ws.closed.wait(5)
    assert (ws.close_code, ws.close_reason) == (code, reason)
    assert call.wait_ended(5) == "disconnected"
    assert sim.agents == {} and sim.connections == []  # released with the calls, atomically


def test_abrupt_drop(sim: Simulator, ws: WsClient) -> None:
    sim.drop(abrupt=True)
    assert ws.closed.wait(5)
    assert ws.close_code is None


def test_displace_hook(sim: Simulator, ws: WsClient) -> None:
    ws.register("support")
    sim.displace("Support")
    assert ws.expect("agent.displaced")["reason"] == "Displaced by new connection"
    assert ws.closed.wait(5) and ws.close_code == 4001


@pytest.mark.parametrize("event", ["connected", "agent.created"])
def test_withhold_and_release_acks(sim: Simulator, make_client: Callable[..., WsClient],
                                   event: str) -> None:
    sim.withhold(event)
    client = make_client(connect=False)
    client.send({"event": "connect", "api_key": "k"})
    client.send({"event": "agent.create", "agent_id": "support"})
    barrier(client)
    assert not of(client.frames, event)
    sim.release(event)
    client.expect(event)


def test_withhold_history_ack(sim: Simulator, ws: WsClient) -> None:
    ws.register("support")
    call = sim.start_call("support")
    sim.withhold("history.updated")
    ws.send({"event": "history.add_context", "call_id": call.call_id, "request_id": "rq_1",
             "text": "x"})
    barrier(ws)
    assert not of(ws.frames, "history.updated")
    sim.release()
    assert ws.expect("history.updated")["request_id"] == "rq_1"


def test_frame_record(sim: Simulator, ws: WsClient) -> None:
    mark = sim.mark()
    ws.register("support")
    created_in = sim.wait_frame(event="agent.create", direction="in", since=mark)
    created_out = sim.wait_frame(match("agent.created", direction="out"), since=mark)
    assert created_in.conn_id == created_out.conn_id == sim.connections[0]
    assert created_in.data == {"event": "agent.create", "agent_id": "support"}
    assert created_in.ts_ns <= created_out.ts_ns
    frames = sim.frames_since(mark)
    assert [f.ts_ns for f in frames] == sorted(f.ts_ns for f in frames)
    with pytest.raises(TimeoutError):
        sim.wait_frame(event="never", timeout=0.05)
    sim.clear_frames()
    assert sim.frames == []


def test_frame_record_can_be_off() -> None:
    with Simulator(record=False) as sim:
        client = WsClient(sim.url)
        client.connect()
        assert sim.frames == []
        client.close()


def test_stop_is_prompt_and_leaves_no_threads() -> None:
    sim = Simulator(words_per_second=5).start()
    clients = [WsClient(sim.url) for _ in range(3)]
    for client in clients:
        client.connect()
    clients[0].register("support")
    call = sim.start_call("support")
    clients[0].reply(call.call_id, " ".join(["word"] * 50), "")
    call.wait_speaking(5)
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started <= 2.0
    assert not [t.name for t in threading.enumerate() if t.name.startswith("voicesync-sim")]
    for client in clients:
        assert client.closed.wait(5)
        assert client.close_code == 1001
        client.close()
    sim.stop()  # idempotent


def test_constructor_is_cheap_and_binds_nothing() -> None:
    before = {t.name for t in threading.enumerate()}
    sim = Simulator(port=0)
    assert {t.name for t in threading.enumerate()} == before
    assert sim.url == "ws://127.0.0.1:0"
    sim.stop()


def test_model_option_starts_the_stand_in_model() -> None:
    pytest.importorskip("voicesync.sim.model")
    with Simulator(model=True) as sim:
        assert sim.model is not None
        assert sim.model.openai_base_url.startswith("http://127.0.0.1:")
    assert sim.model is None
