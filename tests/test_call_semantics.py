"""Call semantics at the seams (issue 11), over real sockets against voicesync.sim.

Every reply answers the turn being handled; every abort hits exactly the stream the
platform means (docs/protocol.md §6.4); every lifecycle outcome has its
event; commands on an ended call fail one documented way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import until

import voicesync


@pytest.fixture
def agent(sim: Any, client: voicesync.Client) -> Iterator[voicesync.Agent]:
    a = client.agent("support")
    client.connect(timeout=5)
    a.wait_ready(5)
    yield a


def live_call(sim: Any, agent: voicesync.Agent) -> tuple[Any, voicesync.Call]:
    simcall = sim.start_call("support")
    return simcall, until(lambda: agent.call(simcall.call_id), 5, "the call")


def sent(sim: Any, since: int, event: str) -> list[dict[str, Any]]:
    return [f.data for f in sim.frames_since(since) if f.direction == "in" and f.event == event]


# ---------------------------------------------------------------------------- turn binding

def test_a_slow_handler_replies_to_its_own_turn_and_learns_it_was_rejected(
        sim: Any, agent: voicesync.Agent) -> None:
    second_seen = threading.Event()
    replies: dict[str, voicesync.Reply] = {}

    def on_turn(turn: voicesync.Turn, call: voicesync.Call) -> None:
        if turn.text == "first":
            # The caller's next turn reaches the reader while this handler still works.
            until(lambda: call.last_message_id != turn.message_id, 5, "the second turn")
            second_seen.set()
        replies[turn.text] = call.reply("re " + turn.text)

    agent.on("turn.end", on_turn)
    simcall, _ = live_call(sim, agent)
    mark = sim.mark()
    first = simcall.say("first")
    second = simcall.say("second")
    assert second_seen.wait(5)
    until(lambda: len(sent(sim, mark, "bot.reply")) == 2, 5, "both replies")
    by_text = {f["text"]: f["in_reply_to"] for f in sent(sim, mark, "bot.reply")}
    assert by_text == {"re first": first, "re second": second}
    assert replies["first"].wait(5) is True
    assert replies["first"].rejected and replies["first"] == replies["first"].message_id
    assert replies["second"].wait(5) is False and not replies["second"].rejected
    assert simcall.wait_reply(5) == "re second"


def test_outside_a_handler_a_reply_must_name_its_turn(sim: Any,
                                                      agent: voicesync.Agent) -> None:
    turns: list[voicesync.Turn] = []
    agent.on("turn.end", lambda turn, call: turns.append(turn))
    simcall, call = live_call(sim, agent)
    simcall.say("hello there")
    until(lambda: turns, 5, "the turn")
    with pytest.raises(voicesync.TurnRequiredError, match="turn="):
        call.reply("who am I answering?")
    with pytest.raises(voicesync.TurnRequiredError, match="turn="):
        call.reply_stream()
    mark = sim.mark()
    reply = call.reply("Hi!", turn=turns[0])
    until(lambda: sent(sim, mark, "bot.reply"), 5, "the reply")
    assert sent(sim, mark, "bot.reply")[0]["in_reply_to"] == turns[0].message_id
    assert reply.wait(5) is False and simcall.wait_reply(5) == "Hi!"


def test_a_rejected_stream_stops_at_once_and_the_next_turn_is_not_delayed(
        sim: Any, agent: voicesync.Agent) -> None:
    sim.words_per_second = 50
    streams: list[voicesync.ReplyStream] = []
    written: list[int] = []
    started: dict[str, float] = {}

    def on_turn(turn: voicesync.Turn, call: voicesync.Call) -> None:
        started[turn.text] = time.monotonic()
        if turn.text != "first":
            call.reply("ok")
            return
        until(lambda: call.last_message_id != turn.message_id, 5, "the second turn")
        with call.reply_stream() as stream:  # answers "first": already superseded
            streams.append(stream)
            count = 0
            for i in range(40):  # a model producing 40 tokens, 50 ms apart
                if not stream.write(f"token{i} "):
                    break
                count += 1
                stream.aborted.wait(0.05)
            written.append(count)

    agent.on("turn.end", on_turn)
    simcall, _ = live_call(sim, agent)
    simcall.say("first")
    simcall.say("second")
    until(lambda: written and "second" in started, 5, "both handlers")
    stream = streams[0]
    assert stream.aborted and stream.abort_reason == "rejected"
    assert written[0] < 10, f"the dead reply kept streaming: {written[0]} of 40 tokens"
    assert started["second"] - started["first"] < 1.0
    assert simcall.wait_reply(5) == "ok"


# ---------------------------------------------------------------------------- precise aborts

def test_cancelling_a_filler_leaves_the_answer_stream_alive(sim: Any,
                                                            agent: voicesync.Agent) -> None:
    sim.words_per_second = 20
    outcome: dict[str, Any] = {}

    def on_turn(turn: voicesync.Turn, call: voicesync.Call) -> None:
        filler = call.say("one moment please " * 10)
        until(lambda: call.current_bot_text, 5, "the filler to play")
        with call.reply_stream(turn) as answer:
            answer.write("The answer is forty two. ")
            outcome["cancelled"] = call.cancel(filler.message_id)
            outcome["filler"] = filler.wait(5)
            answer.write("Anything else?")
            outcome["answer"] = answer

    agent.on("turn.end", on_turn)
    simcall, _ = live_call(sim, agent)
    simcall.say("what is the answer")
    until(lambda: "answer" in outcome, 5, "the handler")
    assert outcome["cancelled"] and outcome["filler"] is True
    answer = outcome["answer"]
    assert not answer.aborted and answer.abort_reason is None
    until(lambda: any(line[1] == "The answer is forty two. Anything else?"
                      for line in simcall.transcript), 5, "the answer to be spoken")


def test_clear_and_cancel_abort_only_the_streams_they_name(sim: Any,
                                                           agent: voicesync.Agent) -> None:
    sim.words_per_second = 20
    turns: list[voicesync.Turn] = []
    agent.on("turn.end", lambda turn, call: turns.append(turn))
    simcall, call = live_call(sim, agent)
    simcall.say("talk to me")
    until(lambda: turns, 5, "the turn")
    playing = call.reply_stream(turns[0])
    queued = call.reply_stream(turns[0])
    later = call.reply_stream(turns[0])  # nothing written yet: the platform has not seen it
    playing.write("one two three four five six seven eight. ")
    queued.write("queued words here. ")
    simcall.wait_speaking(5, words=1)
    assert call.cancel(queued.message_id)
    until(lambda: queued.aborted, 5, "the named stream to abort")
    assert queued.abort_reason == "cancelled" and not playing.aborted and not later.aborted
    assert call.clear()
    until(lambda: playing.aborted, 5, "the playing stream to abort")
    assert playing.abort_reason == "cancelled" and not later.aborted
    assert later.write("Still here. ") and later.end()
    until(lambda: any(line[1] == "Still here." for line in simcall.transcript), 5,
          "the later stream to be spoken")


@pytest.mark.parametrize("reason", ["user_spoke", "continuation", None])
def test_the_callers_barge_in_aborts_every_stream(sim: Any, agent: voicesync.Agent,
                                                  reason: str | None) -> None:
    simcall, call = live_call(sim, agent)
    simcall.say("hello")
    until(lambda: call.last_message_id, 5, "the user message")
    one = call.reply_stream(in_reply_to=call.last_message_id or "")
    two = call.reply_stream(in_reply_to=call.last_message_id or "")
    fields = {"message_id": "msg_somethingelse", "words_spoken": 1}
    if reason is not None:
        fields["reason"] = reason
    simcall.send_event("bot.interrupted", **fields)
    until(lambda: one.aborted and two.aborted, 5, "both streams to abort")
    assert one.abort_reason == two.abort_reason == "bot.interrupted"


# ---------------------------------------------------------------------------- lifecycle

def test_a_failed_dial_emits_call_ended_and_still_raises(sim: Any,
                                                         client: voicesync.Client) -> None:
    agent = client.agent("support", phone="+13186330963")
    ended: list[tuple[voicesync.Call, str]] = []
    agent.on("call.ended", lambda call, reason: ended.append((call, reason)))
    client.connect(timeout=5)
    agent.wait_ready(5)
    sim.dial_script["+14155550000"] = "busy"
    sim.dial_script["+14155550001"] = "no-answer"
    for number, reason in (("+14155550000", "busy"), ("+14155550001", "no-answer")):
        with pytest.raises(voicesync.CallFailedError) as failed:
            agent.dial(number, timeout=5)
        assert failed.value.reason == reason
    until(lambda: len(ended) == 2, 5, "two call.ended events")
    assert [(c.to, c.direction, c.status, r) for c, r in ended] == [
        ("+14155550000", "outbound", "ended", "busy"),
        ("+14155550001", "outbound", "ended", "no-answer")]
    assert agent.calls == [] and ended[0][0].reply("x", in_reply_to="") == ""


def test_call_error_ends_the_call_with_reason_error(sim: Any, agent: voicesync.Agent) -> None:
    ended: list[str] = []
    agent.on("call.ended", lambda call, reason: ended.append(reason))
    simcall, call = live_call(sim, agent)
    stream = call.reply_stream(in_reply_to="")
    simcall.send_event("call.error", code="MEDIA_FAILED", error="the media path broke")
    assert call.wait_ended(5) and call.reason == "error"
    until(lambda: ended == ["error"], 5, "call.ended")
    assert stream.aborted and agent.calls == [] and call.hangup() is False


def test_commands_on_an_ended_call_fail_the_documented_way(sim: Any,
                                                           agent: voicesync.Agent) -> None:
    simcall, call = live_call(sim, agent)
    simcall.hangup()
    assert call.wait_ended(5)
    mark = sim.mark()
    for result in (call.send({"event": "bot.clear", "call_id": call.id}), call.cancel(),
                   call.clear(), call.hangup(), call.forward("+14155550000"),
                   call.send_dtmf("1"), call.hold(), call.unhold(), call.mute(),
                   call.unmute(), call.update(language="es"), call.load_skill("x"),
                   call.unload_skill("x"), call.tool_result("m", [])):
        assert result is False
    said = call.say("anyone?")
    assert not said and said.sent is False and said.wait(0) is True
    reply = call.reply("late", in_reply_to="")
    assert reply == "" and not reply and reply.sent is False and reply.message_id
    assert reply.wait(0) is True
    stream = call.reply_stream(in_reply_to="")
    assert stream.aborted and stream.abort_reason == "call.ended" and not stream.write("x")
    for request in (call.get_history, call.clear_history,
                    lambda: call.add_context("note"), lambda: call.set_prompt("p")):
        with pytest.raises(voicesync.CallEndedError, match="ended"):
            request()
    assert agent.client is not None and agent.client.send({"event": "ping"})
    sim.wait_frame(event="ping", direction="in", since=mark)  # everything before it arrived
    assert [f.event for f in sim.frames_since(mark) if f.direction == "in"] == ["ping"]


# ---------------------------------------------------------------------------- greeting, channels

def test_a_callable_greeting_passed_as_a_keyword_is_spoken(sim: Any,
                                                           client: voicesync.Client) -> None:
    agent = client.agent("greeter", greeting=lambda call: f"Hello {call.from_[-4:]}!")
    client.connect(timeout=5)
    agent.wait_ready(5)
    create = sim.wait_frame(event="agent.create", direction="in").data
    assert "greeting" not in create
    simcall = sim.start_call("greeter", from_="+15550004321")
    until(lambda: simcall.transcript, 5, "the greeting")
    assert simcall.transcript[0] == ("bot", "Hello 4321!", False)


def test_greeting_forms_text_keyword_and_class_callable(sim: Any,
                                                        client: voicesync.Client) -> None:
    class Greeter(voicesync.Agent):
        id = "byclass"
        greeting = staticmethod(lambda call: "Class hello.")

    by_class = client.add_agent(Greeter())
    by_text = client.agent("bytext", greeting="Text hello.")
    client.connect(timeout=5)
    by_class.wait_ready(5)
    by_text.wait_ready(5)
    for agent_id, expected in (("byclass", "Class hello."), ("bytext", "Text hello.")):
        simcall = sim.start_call(agent_id)
        until(lambda: simcall.transcript, 5, f"the greeting of {agent_id}")  # noqa: B023
        assert simcall.transcript[0] == ("bot", expected, False)
    with pytest.raises(voicesync.ConfigurationError, match="callable greeting"):
        by_text.update(greeting=lambda call: "too late")


@pytest.mark.parametrize("kind", ["webrtc", "chat"])
def test_remove_channel_sends_the_ref_the_platform_needs(sim: Any, client: voicesync.Client,
                                                         kind: str) -> None:
    agent = client.agent("support")
    (agent.add_webrtc if kind == "webrtc" else agent.add_chat)()
    client.connect(timeout=5)
    agent.wait_ready(5)
    sim.wait_frame(event="channel.added", direction="out")
    removed = threading.Event()
    agent.on("channel.removed", lambda event: removed.set())
    assert agent.remove_channel(kind)
    frame = sim.wait_frame(event="channel.remove", direction="in").data
    assert frame == {"event": "channel.remove", "agent_id": "support", "type": kind,
                     "ref": kind}
    assert removed.wait(5) and agent.channels == []
    assert kind not in sim.agents["support"].channels


# ---------------------------------------------------------------------------- history

def test_a_continuation_keeps_each_user_utterance_once(sim: Any,
                                                       agent: voicesync.Agent) -> None:
    sim.words_per_second = 20

    def on_turn(turn: voicesync.Turn, call: voicesync.Call) -> None:
        if turn.text == "I also want":
            call.reply("Sure, what else would you like to add to your order today?")

    agent.on("turn.end", on_turn)
    simcall, call = live_call(sim, agent)
    simcall.say("I also want")
    simcall.wait_speaking(5, words=2)
    simcall.continue_turn("breakfast")
    until(lambda: any(m.text == "I also want breakfast" for m in call.history.messages()),
          5, "the whole utterance")
    until(lambda: len(simcall.transcript) == 2, 5, "the simulator's record")
    heard = [(m.role, m.text, m.interrupted) for m in call.history.messages()]
    spoken = [("user" if who == "user" else "assistant", text, cut)
              for who, text, cut in simcall.transcript]
    assert heard == spoken
    assert [m.text for m in call.history.messages() if m.role == "user"] == [
        "I also want breakfast"]
    assert [m["content"] for m in call.messages if m["role"] == "user"] == [
        "I also want breakfast"]


def test_a_ringing_call_is_not_answered_on_a_later_connection(sim: Any,
                                                              client: voicesync.Client) -> None:
    agent = client.agent("support", phone="+13186330963", ringing=True)
    rang: list[voicesync.RingingCall] = []
    agent.on("call.ringing", rang.append)
    client.connect(timeout=5)
    agent.wait_ready(5)
    sim.wait_frame(event="channel.added", direction="out")
    sim.ring(None, to="+13186330963")
    until(lambda: rang, 5, "call.ringing")
    sim.drop()
    until(lambda: not agent.ready, 5, "the drop")
    agent.wait_ready(5)  # registered again on a new connection
    mark = sim.mark()
    assert rang[0].accept() is False
    assert client.send({"event": "ping"})
    sim.wait_frame(event="ping", direction="in", since=mark)
    assert [f for f in sim.frames_since(mark) if f.direction == "in"
            and f.event == "call.accept"] == []


def test_configuring_a_session_never_waits_for_a_later_connection(
        sim: Any, agent: voicesync.Agent) -> None:
    _, call = live_call(sim, agent)
    mark = sim.mark()
    assert agent.configure_session(call.id, voice="alloy")
    until(lambda: sent(sim, mark, "session.configure"), 5, "session.configure")
    assert sent(sim, mark, "session.configure")[0]["session_id"] == call.id
    sim.drop()
    until(lambda: not agent.ready, 5, "the drop")
    assert agent.configure_session(call.id, voice="nova") is False  # not queued meanwhile
    mark = sim.mark()
    agent.wait_ready(5)  # registered again on a new connection
    assert agent.client is not None and agent.client.send({"event": "ping"})
    sim.wait_frame(event="ping", direction="in", since=mark)
    assert sent(sim, mark, "session.configure") == []


def test_a_message_the_app_cancels_before_it_plays_is_not_in_the_history(
        sim: Any, agent: voicesync.Agent) -> None:
    sim.words_per_second = 20
    done: dict[str, Any] = {}

    def on_turn(turn: voicesync.Turn, call: voicesync.Call) -> None:
        first = call.reply("please hold on while I look that up for you", turn=turn)
        second = call.say("this was never said")
        until(lambda: call.current_bot_text, 5, "the first message to play")
        assert call.cancel(second.message_id)
        done["second"] = second.wait(5)
        done["first"] = first.wait(10)
        done["history"] = [m.content for m in call.history.messages()]

    agent.on("turn.end", on_turn)
    simcall, _ = live_call(sim, agent)
    simcall.say("where is my parcel")
    until(lambda: "history" in done, 15, "the handler")
    assert done["second"] is True and done["first"] is False
    assert done["history"] == ["where is my parcel",
                               "please hold on while I look that up for you"]
