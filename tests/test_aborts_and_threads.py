"""Every abort trigger, applied before later handlers; handler isolation and ordering."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import CANARY_KEY, until

import voicesync
from voicesync._backoff import Backoff


@pytest.fixture
def agent(sim: Any, client: voicesync.Client) -> Iterator[voicesync.Agent]:
    a = client.agent("support")
    client.connect(timeout=5)
    a.wait_ready(5)
    yield a


class StreamingHandler:
    """A turn handler that streams slowly until aborted; records how it stopped."""

    def __init__(self, agent: voicesync.Agent, tokens: int = 200) -> None:
        self.streams: list[voicesync.ReplyStream] = []
        self.exited = threading.Event()
        self.started = threading.Event()
        self.tokens = tokens
        agent.on("turn.end", self)

    def __call__(self, turn: voicesync.Turn, call: voicesync.Call) -> None:
        if self.streams:
            return
        with call.reply_stream(turn) as stream:
            self.streams.append(stream)
            for i in range(self.tokens):
                if i == 3:
                    self.started.set()
                if stream.aborted.wait(0.01):
                    break
                if not stream.write(f"word{i}. "):
                    break
        self.exited.set()


def test_barge_in_aborts_the_stream_and_nothing_is_sent_after(sim: Any,
                                                              agent: voicesync.Agent) -> None:
    sim.words_per_second = 50
    handler = StreamingHandler(agent)
    simcall = sim.start_call("support")
    simcall.say("tell me everything")
    assert handler.started.wait(5)
    simcall.barge_in("stop", after_words=2)
    assert handler.exited.wait(5)
    stream = handler.streams[0]
    assert stream.aborted and stream.abort_reason in ("bot.interrupted", "turn.continued")
    sim.wait_frame(event="bot.reply.stream", direction="in", message_id=stream.message_id,
                   action="end")
    ends = [f for f in sim.frames if f.direction == "in" and f.event == "bot.reply.stream"
            and f.get("message_id") == stream.message_id]
    assert [f.get("action") for f in ends].count("end") == 1
    assert ends[-1].get("action") == "end"


def test_continuation_aborts_active_streams(sim: Any, agent: voicesync.Agent) -> None:
    handler = StreamingHandler(agent)
    continued = threading.Event()
    agent.on("turn.continued", lambda event, call: continued.set())
    simcall = sim.start_call("support")
    simcall.say("I want to")
    assert handler.started.wait(5)
    simcall.continue_turn("I want to book a table")
    assert handler.exited.wait(5) and continued.wait(5)
    assert handler.streams[0].abort_reason in ("turn.continued", "bot.interrupted")


def test_call_end_and_disconnect_abort_streams(sim: Any, agent: voicesync.Agent,
                                               client: voicesync.Client) -> None:
    handler = StreamingHandler(agent)
    simcall = sim.start_call("support")
    simcall.say("go on")
    assert handler.started.wait(5)
    simcall.hangup()
    assert handler.exited.wait(5)
    assert handler.streams[0].abort_reason == "call.ended"


def test_disconnect_aborts_streams_as_disconnected(sim: Any) -> None:
    client = voicesync.Client(api_key=CANARY_KEY, url=sim.url,
                              backoff=Backoff(initial=0.05, maximum=0.1))
    try:
        agent = client.agent("support")
        client.connect(timeout=5)
        agent.wait_ready(5)
        handler = StreamingHandler(agent)
        ended: list[str] = []
        agent.on("call.ended", lambda call, reason: ended.append(reason))
        sim.start_call("support").say("go on")
        assert handler.started.wait(5)
        sim.drop(code=1011, reason="server restart")
        assert handler.exited.wait(5)
        assert handler.streams[0].abort_reason == "disconnected"
        until(lambda: ended, 5, "call.ended for the dropped call")
        assert ended == ["server restart"]
    finally:
        client.close()


def test_abort_is_applied_while_every_handler_of_the_call_is_blocked(
        sim: Any, agent: voicesync.Agent) -> None:
    """The abort must not wait behind the call's own blocked lane."""
    streams: list[voicesync.ReplyStream] = []
    opened = threading.Event()
    release = threading.Event()

    @agent.on("turn.end")
    def hold_stream(turn: voicesync.Turn, call: voicesync.Call) -> None:
        if streams:
            return
        stream = call.reply_stream(turn)
        stream.write("Let me think about that for a long time. ")
        streams.append(stream)
        opened.set()
        release.wait(10)  # blocks the lane: later events of this call queue behind it
        stream.end()

    simcall = sim.start_call("support")
    simcall.say("question")
    assert opened.wait(5)
    simcall.barge_in("stop", after_words=1)
    assert streams[0].aborted.wait(5)
    release.set()


def test_one_calls_blocked_handler_never_delays_another_call(
        sim: Any, agent: voicesync.Agent) -> None:
    release = threading.Event()
    answered = threading.Event()
    first: list[str] = []

    @agent.on("turn.end")
    def handler(turn: voicesync.Turn, call: voicesync.Call) -> None:
        if not first:
            first.append(call.id)
            release.wait(10)
            return
        call.reply("quick")
        answered.set()

    slow = sim.start_call("support")
    slow.say("slow one")
    until(lambda: first, 5, "the first handler")
    fast = sim.start_call("support", from_="+15550002222")
    fast.say("fast one")
    assert answered.wait(5)
    assert fast.wait_reply(5) == "quick"
    release.set()


def test_a_raising_handler_is_reported_and_the_call_goes_on(
        sim: Any, agent: voicesync.Agent, client: voicesync.Client) -> None:
    errors: list[BaseException] = []
    client.on("error", errors.append)
    replies = threading.Event()

    @agent.on("turn.end")
    def boom(turn: voicesync.Turn, call: voicesync.Call) -> None:
        if turn.text == "boom":
            raise RuntimeError("handler exploded")
        call.reply("fine")
        replies.set()

    simcall = sim.start_call("support")
    simcall.say("boom")
    until(lambda: errors, 5, "the error event")
    assert isinstance(errors[0], RuntimeError)
    simcall.say("again")
    assert replies.wait(5) and simcall.wait_reply(5) == "fine"
    assert client.stats().handler_errors == 1


def test_events_of_one_call_reach_handlers_in_wire_order(sim: Any,
                                                         agent: voicesync.Agent) -> None:
    seen: list[str] = []
    names = ("speech.started", "user.speaking", "user.message", "eager.turn",
             "speech.ended", "turn.end")
    for name in names:
        agent.on(name, lambda event, call, name=name: seen.append(name))
    simcall = sim.start_call("support")
    simcall.say("one two three")
    until(lambda: "turn.end" in seen, 5, "turn.end")
    wire = [f.event for f in sim.frames if f.direction == "out" and f.event in names]
    assert seen == wire


def test_typed_events_and_call_state(sim: Any, agent: voicesync.Agent) -> None:
    words: list[voicesync.BotWord] = []
    confirmed: list[voicesync.MessageConfirmed] = []
    finished = threading.Event()
    agent.on("bot.word", lambda event, call: words.append(event))
    agent.on("message.confirmed", lambda event, call: confirmed.append(event))
    agent.on("bot.finished", lambda event, call: finished.set())
    agent.on("turn.end", lambda turn, call: call.reply("Nice to meet you."))
    simcall = sim.start_call("support")
    simcall.say("hi")
    assert finished.wait(5)
    assert [w.word for w in words] == ["Nice", "to", "meet", "you."]
    assert isinstance(words[0], voicesync.BotWord) and words[0].word_index == 0
    assert confirmed[0].text == "Nice to meet you."
    call = agent.calls[0]
    assert call.transcript == [{"role": "user", "content": "hi"},
                               {"role": "assistant", "content": "Nice to meet you."}]
    simcall.duplicate("message.confirmed")
    digits: list[str] = []
    agent.on("call.dtmf_received", lambda event, call: digits.append(event.digits))
    simcall.press("12")
    simcall.press("3")
    until(lambda: len(digits) == 3, 5, "three keypad events")
    assert digits == ["1", "12", "123"] and len(confirmed) == 1  # the duplicate was dropped


def test_llm_before_is_answered_after_handlers(sim: Any, client: voicesync.Client) -> None:
    agent = client.agent("brain", llm="openai/gpt-4.1-mini", prompt="Echo.")
    prepared = threading.Event()

    @agent.on("llm.before")
    def prepare(event: voicesync.Event, call: voicesync.Call) -> None:
        call.set_prompt_vars({"mood": "happy"})
        prepared.set()

    client.connect(timeout=5)
    agent.wait_ready(5)
    simcall = sim.start_call("brain")
    simcall.say("hello")
    assert prepared.wait(5)
    ready = sim.wait_frame(event="llm.ready", direction="in")
    set_vars = sim.wait_frame(event="history.set_vars", direction="in")
    assert set_vars.ts_ns < ready.ts_ns
    assert ready.data["agent_id"] == "brain" and ready.data["call_id"] == simcall.call_id
    assert simcall.wait_reply(5)


def test_close_while_streaming_many_calls_is_quick(sim: Any) -> None:
    client = voicesync.Client(api_key=CANARY_KEY, url=sim.url)
    agent = client.agent("support")
    streaming = threading.Semaphore(0)

    @agent.on("turn.end")
    def forever(turn: voicesync.Turn, call: voicesync.Call) -> None:
        with call.reply_stream(turn) as stream:
            streaming.release()
            while stream.write("la "):
                stream.aborted.wait(0.02)

    client.connect(timeout=5)
    agent.wait_ready(5)
    for i in range(20):
        sim.start_call("support", from_=f"+1555000{i:04d}").say("sing")
    for _ in range(20):
        assert streaming.acquire(timeout=5)
    t0 = time.monotonic()
    client.close()
    assert time.monotonic() - t0 <= 2.0
    until(lambda: not [t for t in threading.enumerate()
                       if t.name.startswith("voicesync-") and not t.name.startswith(
                           "voicesync-sim")], 3, "every SDK thread to end")
