"""Call controls, history requests, outbound dialing, ringing and session limits (§9.6, §9.7)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sim_support import WsClient, barrier, names, of

from voicesync.sim import SimCall, Simulator


@pytest.fixture
def call(sim: Simulator, ws: WsClient) -> Iterator[SimCall]:
    ws.register("support", prompt="You are helpful.")
    call = sim.start_call("support")
    ws.expect("call.started", call_id=call.call_id)
    yield call


def send(ws: WsClient, call: SimCall, event: str, **fields: object) -> None:
    ws.send({"event": event, "call_id": call.call_id, **fields})


def test_caller_hangup_ends_with_duration_and_messages(ws: WsClient, call: SimCall) -> None:
    call.say("bye now")
    ws.reply(call.call_id, "Goodbye.", call.user_message_id)
    call.wait_reply(5)
    call.hangup()
    ended = ws.expect("call.ended")
    assert ended["reason"] == "hangup" and ended["session_id"] == call.call_id
    assert isinstance(ended["duration_seconds"], float) and ended["duration_seconds"] >= 0
    assert ended["ended_at"] >= ended["started_at"] > 1_600_000_000
    assert ended["messages"] == [{"role": "system", "content": "You are helpful."},
                                 {"role": "user", "content": "bye now"},
                                 {"role": "assistant", "content": "Goodbye."}]
    assert call.wait_ended(1) == "hangup" and call.status == "ended"
    with pytest.raises(RuntimeError):
        call.say("hello?")


def test_agent_hangup(ws: WsClient, call: SimCall) -> None:
    send(ws, call, "call.hangup")
    assert ws.expect("call.ended")["reason"] == "hangup"
    assert call.wait_ended(5) == "hangup"


def test_forward_then_end(ws: WsClient, call: SimCall) -> None:
    send(ws, call, "call.forward", to="+15559999999", message="", announce=False)
    assert ws.expect("call.forwarded")["to"] == "+15559999999"
    assert ws.expect("call.ended")["reason"] == "forwarded"


def test_dtmf_both_ways(ws: WsClient, call: SimCall) -> None:
    send(ws, call, "call.dtmf", digits="12#")
    assert ws.expect("call.dtmf_sent")["digits"] == "12#"
    call.press("4")
    call.press("2*")
    presses = [(f["digit"], f["digits"]) for f in
               [ws.expect("call.dtmf_received", digits=d) for d in ("4", "42", "42*")]]
    assert presses == [("4", "4"), ("2", "42"), ("*", "42*")]


def test_hold_and_mute(ws: WsClient, call: SimCall) -> None:
    send(ws, call, "call.hold")
    ws.expect("call.held")
    assert call.say("anyone there?") is None
    send(ws, call, "call.unhold")
    ws.expect("call.unheld")
    send(ws, call, "call.mute")
    ws.expect("call.muted")
    assert call.muted
    assert call.say("secret one") is None
    call.say("secret two")
    send(ws, call, "call.unmute")
    assert ws.expect("call.unmuted")["muted_transcript"] == "secret one secret two"
    send(ws, call, "call.mute")
    send(ws, call, "call.unmute")
    assert ws.wait(lambda f: f["event"] == "call.unmuted" and f["muted_transcript"] is None)
    assert not of(ws.frames, "user.message", "speech.started")


def test_skills_and_session_configure(ws: WsClient, call: SimCall) -> None:
    send(ws, call, "skill.load", skill="booking")
    assert ws.expect("skill.loaded") ["skill"] == "booking"
    assert ws.frames[-1]["by"] == "manual"
    send(ws, call, "skill.unload", skill="booking")
    ws.expect("skill.unloaded", skill="booking")
    ws.send({"event": "session.configure", "session_id": call.call_id, "language": "es"})
    ws.expect("session.configured")
    assert ws.expect("call.updated")["language"] == "es"
    call.say("hola")
    assert ws.expect("user.message")["language"] == "es"


def test_history_requests_are_acked_with_ids(ws: WsClient, call: SimCall) -> None:
    def request(event: str, rid: str, **fields: object) -> dict[str, object]:
        send(ws, call, event, request_id=rid, **fields)
        ack = ws.wait(lambda f: f.get("request_id") == rid)
        assert ack["call_id"] == call.call_id
        return ack

    data = request("history.get", "rq_1_a")
    assert data["event"] == "history.data"
    assert data["messages"] == [{"role": "system", "content": "You are helpful."}]
    added = request("history.add", "rq_2_b", messages=[{"role": "user", "content": "hi"}])
    assert added["event"] == "history.updated" and added["count"] == 2
    assert request("history.add_context", "rq_3_c", text="note")["count"] == 3
    assert request("history.set_instructions", "rq_4_d", prompt="Be brief.")["count"] == 3
    assert request("history.set_vars", "rq_5_e", vars={"name": "Ana"})["count"] == 3
    assert call.vars == {"name": "Ana"}
    assert call.history[:2] == [{"role": "system", "content": "Be brief."},
                                {"role": "system", "content": "note"}]
    assert request("history.clear", "rq_6_f")["count"] == 2
    assert request("history.set", "rq_7_g", messages=[])["count"] == 0
    bad = request("history.add", "rq_8_h", messages="nope")
    assert "error" in bad and "count" not in bad
    send(ws, call, "history.get")  # the oldest servers' shape: no request_id
    assert "request_id" not in ws.expect("history.data", messages=[])
    ws.send({"event": "history.get", "call_id": "CA_nope", "request_id": "rq_9_i"})
    unknown = ws.expect("history.data", request_id="rq_9_i")
    assert unknown["call_id"] == "CA_nope" and unknown["error"]


@pytest.mark.parametrize("outcome", ["busy", "no-answer", "failed", "canceled"])
def test_dial_not_answered(sim: Simulator, ws: WsClient, outcome: str) -> None:
    ws.register("caller")
    sim.dial_script["+15550002000"] = outcome  # type: ignore[assignment]
    ws.send({"event": "call.dial", "agent_id": "caller", "to": "+15550002000",
             "from": "+15550002001"})
    dialing = ws.expect("call.dialing")
    assert (dialing["to"], dialing["from"], dialing["agent_id"]) == (
        "+15550002000", "+15550002001", "caller")
    ended = ws.expect("call.ended")
    assert ended["call_id"] == dialing["call_id"] and ended["reason"] == outcome
    assert (ended["direction"], ended["to"], ended["from"]) == (
        "outbound", "+15550002000", "+15550002001")
    assert not of(ws.frames, "call.started")


def test_dial_answered_plays_the_greeting(sim: Simulator, ws: WsClient) -> None:
    ws.register("caller")
    ws.send({"event": "channel.add", "agent_id": "caller", "type": "phone",
             "ref": "+15550002002"})
    ws.expect("channel.added")
    ws.send({"event": "call.dial", "agent_id": "caller", "to": "+15550002003",
             "greeting": "Hi, a follow-up call.", "metadata": {"appt": "1"}})
    dialing = ws.expect("call.dialing")
    assert dialing["from"] == "+15550002002"
    started = ws.expect("call.started")
    assert started["call_id"] == dialing["call_id"] and started["direction"] == "outbound"
    assert started["metadata"] == {"appt": "1"} and started["to"] == "+15550002003"
    call = sim.wait_call(to="+15550002003", direction="outbound")
    assert call.wait_reply(5) == "Hi, a follow-up call."
    call.say("who is this?")
    ws.expect("turn.end", call_id=call.call_id)


@pytest.fixture
def ringing(sim: Simulator, ws: WsClient) -> str:
    ws.register("screen")
    ws.send({"event": "channel.add", "agent_id": "screen", "type": "phone",
             "ref": "+15550003000", "ringing": True})
    ws.expect("channel.added")
    return "+15550003000"


def test_ringing_call_accepted(sim: Simulator, ws: WsClient, ringing: str) -> None:
    call = sim.ring(to=ringing, from_="+15550003001")
    ring = ws.expect("call.ringing")
    assert (ring["call_id"], ring["from"], ring["to"]) == (call.call_id, "+15550003001", ringing)
    assert call.status == "ringing"
    ws.send({"event": "call.accept", "agent_id": "screen", "call_id": call.call_id})
    assert call.wait_started(5) is True
    assert ws.expect("call.started")["call_id"] == call.call_id


def test_ringing_call_rejected(sim: Simulator, ws: WsClient, ringing: str) -> None:
    call = sim.ring(to=ringing)
    ws.expect("call.ringing")
    ws.send({"event": "call.reject", "agent_id": "screen", "call_id": call.call_id,
             "reason": "rejected"})
    assert call.wait_started(5) is False
    assert ws.expect("call.rejected") ["reason"] == "rejected"
    assert call.status == "rejected" and call.wait_ended(1) == "rejected"
    barrier(ws)
    assert not of(ws.frames, "call.started")


def test_ringing_call_auto_accepts_after_five_scaled_seconds(sim: Simulator, ws: WsClient,
                                                            ringing: str) -> None:
    sim.time_scale = 0.01
    call = sim.start_call(to=ringing)  # returns once the auto-accept started it
    assert call.status == "active"
    ring = sim.wait_frame(event="call.ringing", direction="out")
    started = sim.wait_frame(event="call.started", direction="out")
    # 5 s at 1/100; frames are stamped as they are written, so a late write of the
    # ring frame shortens the gap: half the nominal still shows it waited.
    assert (started.ts_ns - ring.ts_ns) / 1e9 >= 0.025


@contextmanager
def limited_call(agent: str, time_scale: float, words_per_second: float = 200,
                 **config: Any) -> Iterator[tuple[Simulator, WsClient, SimCall]]:
    """A fresh simulator on a scaled clock, a client, and one started call of `agent`."""
    with Simulator(words_per_second=words_per_second, time_scale=time_scale) as sim:
        ws = WsClient(sim.url)
        ws.connect()
        ws.register(agent, **config)
        try:
            yield sim, ws, sim.start_call(agent)
        finally:
            ws.close()


def test_idle_warnings_then_timeout() -> None:
    limits = {"idle_timeout_seconds": 60, "idle_warning_seconds": 15, "idle_grace_seconds": 10}
    with limited_call("idle", 0.001, session_limits=limits) as (_, ws, call):
        assert call.wait_ended(5) == "idle_timeout"
        ws.expect("call.ended")
        frames = [f for f in ws.events(call.call_id) if f["event"].startswith(("session",
                                                                            "call.ended"))]
        assert names(frames) == ["session.idle_warning", "session.idle_warning",
                                 "session.timeout", "call.ended"]
        assert [f["remaining_seconds"] for f in frames[:2]] == [15, 10]
        assert frames[0]["idle_timeout_seconds"] == 60
        assert frames[2]["reason"] == "idle_timeout" and frames[3]["reason"] == "idle_timeout"
        assert frames[3]["duration_seconds"] >= 70  # simulated seconds


def test_max_duration() -> None:
    limits = {"max_duration_seconds": 30, "idle_timeout_seconds": 0}
    with limited_call("short", 0.001, session_limits=limits) as (_, ws, call):
        assert call.wait_ended(5) == "max_duration"
        assert ws.expect("session.timeout")["reason"] == "max_duration"
        ended = ws.expect("call.ended")
        assert ended["reason"] == "max_duration" and ended["duration_seconds"] >= 30


def test_bot_speech_pauses_the_idle_clock() -> None:
    limits = {"idle_timeout_seconds": 20, "idle_warning_seconds": 0, "idle_grace_seconds": 0}
    # The greeting lasts 0.6 s; the idle limit is 0.2 s.
    with limited_call("chatty", 0.01, 100, greeting=" ".join(["blah"] * 60),
                      session_limits=limits) as (sim, _, call):
        assert call.wait_ended(5) == "idle_timeout"
        sim.wait_frame(event="call.ended", direction="out")
        frames = [f for f in sim.frames if f.call_id == call.call_id and f.direction == "out"]
        events = [f.event for f in frames]
        assert events.index("bot.finished") < events.index("session.idle_warning")
        finished = frames[events.index("bot.finished")]
        timeout = frames[events.index("session.timeout")]
        assert (timeout.ts_ns - finished.ts_ns) / 1e9 >= 0.1  # nominal 0.2


def test_user_speech_resets_the_idle_clock() -> None:
    limits = {"idle_timeout_seconds": 30, "idle_warning_seconds": 10, "idle_grace_seconds": 0}
    # 1/20 scale: the caller has 0.5 s between the warning and the end to speak.
    with limited_call("quiet", 0.05, session_limits=limits) as (sim, ws, call):
        first = ws.expect("session.idle_warning")  # after 20 simulated seconds
        call.say("still here")
        ws.expect("turn.end")
        second = ws.wait(lambda f: f["event"] == "session.idle_warning" and f is not first)
        assert second["remaining_seconds"] == 10
        assert call.wait_ended(5) == "idle_timeout"
        sim.wait_frame(event="call.ended", direction="out")
        frames = [f for f in sim.frames if f.direction == "out" and f.call_id == call.call_id]
        turn_end = next(f for f in frames if f.event == "turn.end")
        timeout = next(f for f in frames if f.event == "session.timeout")
        assert (timeout.ts_ns - turn_end.ts_ns) / 1e9 >= 1.0  # a fresh 30 s at 1/20
