"""Every call and agent command, byte for byte as the simulator got it (docs/protocol.md §4)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import until

import voicesync


@pytest.fixture
def live(sim: Any, client: voicesync.Client) -> Iterator[tuple[Any, voicesync.Agent, Any,
                                                              voicesync.Call]]:
    agent = client.agent("support", voice="elevenlabs/sarah", language="en")
    client.connect(timeout=5)
    agent.wait_ready(5)
    simcall = sim.start_call("support", from_="+15550001111")
    call = until(lambda: agent.call(simcall.call_id), 5, "the call")
    yield sim, agent, simcall, call


def raw_in(sim: Any, event: str, since: int = 0, **fields: Any) -> str:
    """The exact text of the first matching frame the simulator received."""
    frame = sim.wait_frame(event=event, direction="in", since=since, **fields)
    assert frame.raw is not None or frame.data is not None
    return frame.raw if frame.raw is not None else json.dumps(frame.data, separators=(",", ":"))


def test_call_object_reflects_call_started(live: Any) -> None:
    _, agent, simcall, call = live
    assert (call.id, call.from_, call.direction, call.transport, call.status) == (
        simcall.call_id, "+15550001111", "inbound", "phone", "active")
    assert agent.calls == [call] and call.agent is agent


@pytest.mark.parametrize(("method", "args", "kwargs", "expected"), [
    ("cancel", (), {}, {"event": "bot.cancel"}),
    ("cancel", ("msg_x",), {}, {"event": "bot.cancel", "message_id": "msg_x"}),
    ("clear", (), {}, {"event": "bot.clear"}),
    ("forward", ("+15559999999",), {"message": "Transferring", "announce": True},
     {"event": "call.forward", "to": "+15559999999", "message": "Transferring",
      "announce": True}),
    ("forward", ("+15559999999",), {}, {"event": "call.forward", "to": "+15559999999",
                                        "message": "", "announce": False}),
    ("send_dtmf", ("12#",), {}, {"event": "call.dtmf", "digits": "12#"}),
    ("hold", (), {}, {"event": "call.hold"}),
    ("unhold", (), {}, {"event": "call.unhold"}),
    ("mute", (), {}, {"event": "call.mute"}),
    ("unmute", (), {}, {"event": "call.unmute"}),
    ("load_skill", ("booking",), {}, {"event": "skill.load", "skill": "booking"}),
    ("unload_skill", ("booking",), {}, {"event": "skill.unload", "skill": "booking"}),
    ("tool_result", ("msg_5", [{"tool_call_id": "tc_1", "result": {"status": "shipped"},
                                "ephemeral": True, "no_followup": False}]), {},
     {"event": "llm.tool_result", "msg_id": "msg_5", "results": [
         {"tool_call_id": "tc_1", "result": {"status": "shipped"}, "ephemeral": True}]}),
])
def test_call_commands_byte_for_byte(live: Any, method: str, args: tuple[Any, ...],
                                     kwargs: dict[str, Any], expected: dict[str, Any]) -> None:
    sim, _, _, call = live
    mark = sim.mark()
    assert getattr(call, method)(*args, **kwargs) is True
    want = {"event": expected["event"], "call_id": call.id,
            **{k: v for k, v in expected.items() if k != "event"}}
    assert raw_in(sim, expected["event"], mark) == json.dumps(want, separators=(",", ":"))


def test_update_is_verbatim_session_configure(live: Any) -> None:
    sim, agent, _, call = live
    mark = sim.mark()
    call.update(voice="cartesia/yumiko", stt="deepgram:nova-3")
    assert raw_in(sim, "session.configure", mark) == json.dumps(
        {"event": "session.configure", "session_id": call.id, "voice": "cartesia/yumiko",
         "stt": "deepgram:nova-3"}, separators=(",", ":"))
    mark = sim.mark()
    agent.configure_session(call.id, stt="deepgram:nova-3")
    assert json.loads(raw_in(sim, "session.configure", mark)) == {
        "event": "session.configure", "agent_id": "support", "session_id": call.id,
        "stt": {"provider": "deepgram", "model": "nova-3"}}


def test_reply_and_say_frames(live: Any) -> None:
    sim, _, simcall, call = live
    user_id = simcall.say("hello there")
    until(lambda: call.last_message_id == user_id, 5, "the user message")
    mark = sim.mark()
    message_id = call.reply("Hi!", in_reply_to=user_id)
    assert raw_in(sim, "bot.reply", mark) == json.dumps(
        {"event": "bot.reply", "call_id": call.id, "message_id": message_id, "text": "Hi!",
         "in_reply_to": user_id}, separators=(",", ":"))
    assert message_id.startswith("msg_") and len(message_id) == 16
    assert simcall.wait_reply(5) == "Hi!"
    mark = sim.mark()
    handle = call.say("One moment.", add_to_history=True)
    assert json.loads(raw_in(sim, "bot.reply", mark)) == {
        "event": "bot.reply", "call_id": call.id, "message_id": handle.message_id,
        "text": "One moment.", "in_reply_to": "", "add_to_history": True}
    assert handle.wait(5) is False and handle.done


def test_say_handle_reports_interruption(live: Any) -> None:
    sim, _, simcall, call = live
    sim.words_per_second = 20
    handle = call.say("this is a rather long announcement that the caller will cut off soon")
    queued = call.say("and this one was still waiting its turn")
    sim.wait_frame(event="bot.reply", direction="in", message_id=queued.message_id)
    simcall.barge_in("stop", after_words=2)
    assert handle.wait(5) is True
    assert queued.wait(5) is True  # dropped from the platform's queue without a frame


def test_reply_stream_frames_and_spoken_text(live: Any) -> None:
    sim, _, simcall, call = live
    got: list[voicesync.Turn] = []
    done = threading.Event()

    @call.agent.on("turn.end")
    def answer(turn: voicesync.Turn, c: voicesync.Call) -> None:
        got.append(turn)
        with c.reply_stream(turn, message_id="msg_fixed000001") as stream:
            for token in ("Hello", " there", "."):
                stream.write(token)
        done.set()

    user_id = simcall.say("hi")
    assert done.wait(5)
    assert got[0].message_id == user_id and got[0].text == "hi" and got[0].id == 1
    assert simcall.wait_reply(5) == "Hello there."
    frames = [f.raw or json.dumps(f.data, separators=(",", ":")) for f in sim.frames
              if f.direction == "in" and f.event == "bot.reply.stream"]
    base = f'{{"event":"bot.reply.stream","call_id":"{call.id}","message_id":"msg_fixed000001"'
    assert frames == [
        base + f',"action":"start","in_reply_to":"{user_id}"}}',
        base + ',"action":"chunk","token":"Hello"}',
        base + ',"action":"chunk","token":" there"}',
        base + ',"action":"chunk","token":"."}',
        base + ',"action":"end"}',
    ]


def test_history_requests_round_trip_and_time_out(live: Any) -> None:
    sim, _, _, call = live
    assert call.set_history([{"role": "user", "content": "hi"}]) == 1
    assert call.add_history([{"role": "assistant", "content": "hello"}]) == 2
    assert call.get_history() == [{"role": "user", "content": "hi"},
                                  {"role": "assistant", "content": "hello"}]
    call.set_prompt_vars({"name": "Ana"})
    call.add_context("VIP caller")
    call.set_prompt("Be brief.")
    assert call.clear_history() >= 0
    requests = [f.data for f in sim.frames if f.direction == "in"
                and str(f.event).startswith("history.")]
    assert [r["event"] for r in requests] == [
        "history.set", "history.add", "history.get", "history.set_vars",
        "history.add_context", "history.set_instructions", "history.clear"]
    assert all(r["request_id"].startswith("rq_") and r["call_id"] == call.id for r in requests)
    assert requests[3]["vars"] == {"name": "Ana"} and requests[5]["prompt"] == "Be brief."
    sim.withhold("history.updated")
    with pytest.raises(voicesync.RequestTimeout, match=r"history\.updated"):
        call.clear_history(timeout=0.3)


def test_commands_on_an_ended_call_are_dropped(live: Any) -> None:
    sim, agent, simcall, call = live
    ended = threading.Event()
    agent.on("call.ended", lambda c, reason: ended.set())
    simcall.hangup()
    assert ended.wait(5) and call.wait_ended(1)
    assert call.status == "ended" and call.reason == "hangup"
    assert call.duration is not None and agent.calls == []
    mark = sim.mark()
    assert call.hangup() is False and call.reply("late", in_reply_to="") == ""
    stream = call.reply_stream(in_reply_to="")
    assert stream.aborted and stream.write("x") is False
    assert [f for f in sim.frames_since(mark) if f.direction == "in"
            and f.call_id == call.id] == []


def test_agent_channel_and_config_frames(sim: Any, client: voicesync.Client) -> None:
    agent = client.agent("Support Desk", prompt_vars={"name": "Ana"}, allowed_origins=["https://a"])
    agent.add_phone("+1 (318) 633-0963", ringing=True, voice="elevenlabs/valentina")
    client.connect(timeout=5)
    agent.wait_ready(5)  # the simulator acknowledges the slug "support-desk"
    assert raw_in(sim, "agent.create") == (
        '{"event":"agent.create","agent_id":"Support Desk","vars":{"name":"Ana"},'
        '"allowed_origins":["https://a"]}')
    assert raw_in(sim, "channel.add") == (
        '{"event":"channel.add","agent_id":"Support Desk","type":"phone",'
        '"ref":"+1 (318) 633-0963","voice":"elevenlabs/valentina","ringing":true}')
    mark = sim.mark()
    agent.update(voice="elevenlabs/claire")
    agent.add_webrtc()
    agent.remove_channel("+1 (318) 633-0963")
    assert raw_in(sim, "agent.configure", mark) == (
        '{"event":"agent.configure","agent_id":"Support Desk","voice":"elevenlabs/claire"}')
    assert raw_in(sim, "channel.add", mark) == (
        '{"event":"channel.add","agent_id":"Support Desk","type":"webrtc"}')
    assert raw_in(sim, "channel.remove", mark) == (
        '{"event":"channel.remove","agent_id":"Support Desk","type":"phone",'
        '"ref":"+1 (318) 633-0963"}')
    with pytest.raises(voicesync.ConfigurationError, match=r"E\.164"):
        agent.add_phone("12")


def test_more_agent_commands_byte_for_byte(
        sim: Any, client: voicesync.Client) -> None:
    agent = client.agent("support")
    agent.route_callers(["+15550001111"])
    client.connect(timeout=5)
    agent.wait_ready(5)
    assert json.loads(raw_in(sim, "dev.config")) == {"event": "dev.config",
                                                     "callers": ["+15550001111"]}
    mark = sim.mark()
    agent.configure_channel("+13186330963", language="es")
    agent.pause(session_id="CA1")
    agent.resume(contact="+15550001111")
    agent.send_message("A human here", session_id="CA1")
    assert raw_in(sim, "channel.configure", mark) == (
        '{"event":"channel.configure","agent_id":"support","ref":"+13186330963",'
        '"language":"es"}')
    assert raw_in(sim, "session.pause", mark) == (
        '{"event":"session.pause","agent_id":"support","session_id":"CA1"}')
    assert raw_in(sim, "session.resume", mark) == (
        '{"event":"session.resume","agent_id":"support","contact":"+15550001111"}')
    assert raw_in(sim, "session.send", mark) == (
        '{"event":"session.send","agent_id":"support","session_id":"CA1",'
        '"text":"A human here"}')


def test_set_prompt_file_sends_the_files_text_as_the_prompt(live: Any, tmp_path: Any) -> None:
    sim, _, simcall, call = live
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "front-desk.md").write_text("\n  You are Ada, the front desk.\n\n", "utf-8")
    assert call.set_prompt_file("front-desk.md", prompts_dir=prompts) == 1
    assert simcall.history[0] == {"role": "system", "content": "You are Ada, the front desk."}
    (tmp_path / "other.txt").write_text("Be brief.", "utf-8")
    call.set_prompt_file(tmp_path / "other.txt")  # absolute: prompts_dir does not apply
    sent = [f.data["prompt"] for f in sim.frames
            if f.direction == "in" and f.event == "history.set_instructions"]
    assert sent == ["You are Ada, the front desk.", "Be brief."]
    with pytest.raises(voicesync.ConfigurationError, match=r"missing\.md.*prompts_dir='prompts'"):
        call.set_prompt_file("missing.md")
