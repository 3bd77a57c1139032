"""User turns, replies, streams, pacing, barge-in and continuation (§9.3-§9.5)."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterator

import pytest
from sim_support import WsClient, barrier, names, of

from voicesync.sim import SimCall, Simulator


@pytest.fixture
def call(sim: Simulator, ws: WsClient) -> Iterator[SimCall]:
    ws.register("support")
    call = sim.start_call("support")
    ws.expect("call.started", call_id=call.call_id)
    yield call


def test_call_started_comes_first_and_carries_the_call(sim: Simulator, ws: WsClient,
                                                       call: SimCall) -> None:
    started = ws.events(call.call_id)[0]
    assert started["event"] == "call.started"
    assert started["agent_id"] == "support" and started["session_id"] == call.call_id
    assert started["from"] == "+15550001111" and started["direction"] == "inbound"
    assert started["transport"] == "phone" and started["metadata"] == {}
    assert call.call_id.startswith("CA")


def test_user_turn_sequence(ws: WsClient, call: SimCall) -> None:
    user_id = call.say("what time is it")
    mark = ws.mark()
    turn_end = ws.expect("turn.end", call_id=call.call_id)
    frames = [f for f in ws.events(call.call_id) if f["event"] != "call.started"]
    assert mark >= 0
    assert names(frames) == ["speech.started"] + ["user.speaking"] * 4 + [
        "user.message", "eager.turn", "speech.ended", "turn.end"]
    assert [f["text"] for f in of(frames, "user.speaking")] == [
        "what", "what time", "what time is", "what time is it"]
    message = of(frames, "user.message")[0]
    assert message["message_id"] == user_id and message["text"] == "what time is it"
    assert message["turn_id"] == 1 and message["language"] == "en"
    assert turn_end["message_id"] == user_id and turn_end["text"] == "what time is it"
    assert all(f["turn_id"] == 1 for f in frames)
    assert call.transcript == [("user", "what time is it", False)]


def test_turn_variants_docs_order_duplicate_no_eager(ws: WsClient, call: SimCall) -> None:
    call.say("hello there", docs_order=True, duplicate=True, eager=False)
    ws.expect("turn.end")
    frames = [f for f in ws.events(call.call_id) if f["event"] != "user.speaking"][1:]
    assert names(frames) == ["speech.started", "speech.ended", "user.message", "user.message",
                             "turn.end"]
    assert frames[2] == frames[3]


def test_reply_is_spoken_word_by_word(ws: WsClient, call: SimCall) -> None:
    user_id = call.say("hi")
    ws.reply(call.call_id, "Hello there, how are you?", user_id, message_id="msg_r1")
    assert call.wait_reply(5) == "Hello there, how are you?"
    ws.expect("bot.finished", message_id="msg_r1")
    bot = [f for f in ws.events(call.call_id) if f.get("message_id") == "msg_r1"]
    assert names(bot) == ["bot.speaking"] + ["bot.word"] * 5 + ["message.confirmed",
                                                                "bot.finished"]
    assert bot[0]["text"] == "Hello there, how are you?"
    assert [f["word"] for f in of(bot, "bot.word")] == ["Hello", "there,", "how", "are", "you?"]
    assert [f["word_index"] for f in of(bot, "bot.word")] == [0, 1, 2, 3, 4]
    assert bot[-2]["text"] == "Hello there, how are you?"
    assert bot[-1]["duration_ms"] == 25  # 5 words at 200 words/s
    assert call.transcript[-1] == ("bot", "Hello there, how are you?", False)


def test_pacing_follows_words_per_second(sim: Simulator, ws: WsClient, call: SimCall) -> None:
    sim.words_per_second = 20
    user_id = call.say("count")
    ws.reply(call.call_id, " ".join(f"w{i}" for i in range(12)), user_id, message_id="msg_p")
    call.wait_reply(10)
    sim.wait_frame(event="bot.finished", message_id="msg_p", direction="out")
    frames = [f for f in sim.frames if f.direction == "out" and f.get("message_id") == "msg_p"]
    words = [f.ts_ns for f in frames if f.event == "bot.word"]
    finished = next(f.ts_ns for f in frames if f.event == "bot.finished")
    gaps = [(b - a) / 1e9 for a, b in itertools.pairwise(words)]
    assert 0.035 <= statistics.median(gaps) <= 0.1  # nominal 0.05 s per word
    total = (finished - frames[0].ts_ns) / 1e9
    assert 0.45 <= total <= 1.5  # nominal 0.6 s for 12 words


def test_messages_play_one_at_a_time_in_order(ws: WsClient, call: SimCall) -> None:
    ws.reply(call.call_id, "first message here", message_id="msg_a")
    ws.reply(call.call_id, "second one", message_id="msg_b")
    ws.expect("bot.finished", message_id="msg_b")
    frames = [f for f in ws.events(call.call_id) if f.get("message_id") in ("msg_a", "msg_b")]
    order = [(f["event"], f["message_id"]) for f in frames]
    last_a = max(i for i, (_, m) in enumerate(order) if m == "msg_a")
    first_b = min(i for i, (_, m) in enumerate(order) if m == "msg_b")
    assert order[last_a] == ("bot.finished", "msg_a") and last_a < first_b


def test_obsolete_reply_is_rejected_and_not_spoken(sim: Simulator, ws: WsClient,
                                                   call: SimCall) -> None:
    first = call.say("one")
    second = call.say("two")
    ws.reply(call.call_id, "late answer", first, message_id="msg_old")
    rejected = ws.expect("reply.rejected")
    assert rejected["message_id"] == "msg_old" and rejected["in_reply_to"] == first
    assert rejected["expected_reply_to"] == second and rejected["reason"] == "message_obsolete"
    ws.stream(call.call_id, "msg_old_stream", "start", in_reply_to=first)
    ws.stream(call.call_id, "msg_old_stream", "chunk", token="Never spoken. ")
    ws.stream(call.call_id, "msg_old_stream", "end")
    ws.reply(call.call_id, "standalone", "", message_id="msg_ok")
    ws.expect("bot.finished", message_id="msg_ok")
    assert of(ws.frames, "reply.rejected")[1]["message_id"] == "msg_old_stream"
    spoken = {f.get("message_id") for f in of(ws.frames, "bot.speaking", "bot.word")}
    assert spoken == {"msg_ok"}


def test_stream_starts_at_the_first_sentence_boundary(ws: WsClient, call: SimCall) -> None:
    user_id = call.say("tell me")
    ws.stream(call.call_id, "msg_s", "start", in_reply_to=user_id)
    ws.stream(call.call_id, "msg_s", "chunk", token="Hello there")
    barrier(ws)
    assert not of(ws.frames, "bot.speaking")
    ws.stream(call.call_id, "msg_s", "chunk", token=" friend. How")
    speaking = ws.expect("bot.speaking", message_id="msg_s")
    assert speaking["text"] == ""
    ws.wait(lambda f: f.get("word") == "friend.")
    barrier(ws)
    assert [f["word"] for f in of(ws.frames, "bot.word")] == ["Hello", "there", "friend."]
    ws.stream(call.call_id, "msg_s", "chunk", token=" are")
    ws.stream(call.call_id, "msg_s", "chunk", token=" you?")
    ws.stream(call.call_id, "msg_s", "end")
    confirmed = ws.expect("message.confirmed", message_id="msg_s")
    assert confirmed["text"] == "Hello there friend. How are you?"
    assert [f["word"] for f in of(ws.frames, "bot.word")] == [
        "Hello", "there", "friend.", "How", "are", "you?"]
    assert ws.expect("bot.finished", message_id="msg_s")["duration_ms"] == 30


def test_stream_without_a_boundary_starts_at_end(ws: WsClient, call: SimCall) -> None:
    ws.stream(call.call_id, "msg_n", "start", in_reply_to="")
    ws.stream(call.call_id, "msg_n", "chunk", token="no punctuation at all")
    barrier(ws)
    assert not of(ws.frames, "bot.speaking")
    ws.stream(call.call_id, "msg_n", "end")
    ws.expect("bot.finished", message_id="msg_n")
    assert len(of(ws.frames, "bot.word")) == 4


def test_empty_stream_finishes_at_once_without_words(ws: WsClient, call: SimCall) -> None:
    ws.stream(call.call_id, "msg_e", "start", in_reply_to="")
    ws.stream(call.call_id, "msg_e", "end")
    finished = ws.expect("bot.finished", message_id="msg_e")
    assert finished["duration_ms"] == 0
    assert not of(ws.frames, "bot.speaking", "bot.word", "message.confirmed")


def test_barge_in_stops_speech_at_once(sim: Simulator, ws: WsClient, call: SimCall) -> None:
    sim.words_per_second = 50
    user_id = call.say("tell me a story")
    ws.reply(call.call_id, " ".join(f"word{i}" for i in range(40)), user_id, message_id="msg_l")
    ws.reply(call.call_id, "queued, never spoken", user_id, message_id="msg_q")
    call.barge_in("stop, stop", after_words=3)
    ws.expect("turn.end", turn_id=2)
    frames = ws.events(call.call_id)
    at = names(frames).index("bot.interrupted")
    tail = frames[at:]
    assert names(tail[:3]) == ["bot.interrupted", "turn.continued", "message.confirmed"]
    interrupted = tail[0]
    spoken = [f["word"] for f in of(frames, "bot.word", message_id="msg_l")]
    assert interrupted["message_id"] == "msg_l" and interrupted["reason"] == "user_spoke"
    assert interrupted["words_spoken"] == len(spoken) >= 3
    assert interrupted["last_word"] == spoken[-1]
    assert tail[1]["turn_id"] == 2 and tail[2]["text"] == " ".join(spoken)
    assert names(frames[at - 1:at]) == ["speech.started"]
    assert of(tail, "user.message")[0]["text"] == "stop, stop"
    # Let any stray timer fire: a later message plays to the end first.
    ws.reply(call.call_id, "after the barge in", call.user_message_id, message_id="msg_z")
    ws.expect("bot.finished", message_id="msg_z")
    after = ws.events(call.call_id)[at + 1:]
    assert not [f for f in after if f.get("message_id") in ("msg_l", "msg_q")
                and f["event"] in ("bot.word", "bot.finished", "bot.speaking")]
    assert call.transcript[1:4] == [("bot", " ".join(spoken), True), ("user", "stop, stop", False),
                                    ("bot", "after the barge in", False)]


def test_barge_in_discards_the_open_stream(sim: Simulator, ws: WsClient, call: SimCall) -> None:
    sim.words_per_second = 50
    user_id = call.say("go")
    ws.stream(call.call_id, "msg_st", "start", in_reply_to=user_id)
    ws.stream(call.call_id, "msg_st", "chunk", token="One two three four. Five six seven ")
    call.barge_in("wait", after_words=2)
    ws.stream(call.call_id, "msg_st", "chunk", token="eight nine ten. ")
    ws.stream(call.call_id, "msg_st", "end")
    ws.reply(call.call_id, "Done.", call.user_message_id, message_id="msg_done")
    ws.expect("bot.finished", message_id="msg_done")
    frames = ws.events(call.call_id)
    at = names(frames).index("bot.interrupted")
    assert not [f for f in frames[at:] if f.get("message_id") == "msg_st"
                and f["event"] in ("bot.word", "bot.finished")]


def test_wait_reply_returns_the_cut_text(sim: Simulator, ws: WsClient, call: SimCall) -> None:
    sim.words_per_second = 50
    user_id = call.say("long one")
    ws.reply(call.call_id, " ".join(["la"] * 30), user_id)
    call.wait_speaking(5, words=2)
    call.say("enough")
    assert call.transcript[1][2] is True
    assert call.transcript[1][1].startswith("la la")


def test_say_without_interruption_keeps_the_bot_talking(sim: Simulator,
                                                        ws: WsClient) -> None:
    ws.register("polite", interruption=False)
    call = sim.start_call("polite")
    sim.words_per_second = 50
    ws.reply(call.call_id, " ".join(["la"] * 20), "", message_id="msg_k")
    call.wait_speaking(5, words=2)
    call.say("hello?")
    ws.expect("bot.finished", message_id="msg_k")
    assert not of(ws.frames, "bot.interrupted", "turn.continued")


def test_continuation_obsoletes_the_first_message(ws: WsClient, call: SimCall) -> None:
    first = call.say("I want to book")
    ws.expect("turn.end", message_id=first)
    mark = ws.mark()
    second = call.continue_turn("a table for two")
    assert second != first
    ws.expect("turn.end", message_id=second)
    frames = ws.events(call.call_id, start=mark)
    assert names(frames)[:2] == ["speech.started", "turn.continued"]
    assert frames[1]["turn_id"] == 1
    message = of(frames, "user.message")[0]
    assert message["message_id"] == second and message["turn_id"] == 1
    assert message["text"] == "I want to book a table for two"
    assert of(frames, "turn.end")[0]["message_id"] == second
    ws.reply(call.call_id, "stale", first, message_id="msg_stale")
    assert ws.expect("reply.rejected")["expected_reply_to"] == second
    ws.reply(call.call_id, "For two, sure.", second)
    assert call.wait_reply(5) == "For two, sure."
    assert call.transcript[0] == ("user", "I want to book a table for two", False)


def test_continuation_interrupts_a_reply_that_started(sim: Simulator, ws: WsClient,
                                                      call: SimCall) -> None:
    sim.words_per_second = 50
    first = call.say("I want")
    ws.reply(call.call_id, " ".join(["okay"] * 30), first, message_id="msg_c")
    call.wait_speaking(5, words=1)
    second = call.continue_turn("pizza")
    ws.expect("turn.end", message_id=second)
    interrupted = ws.expect("bot.interrupted", message_id="msg_c")
    assert interrupted["reason"] == "continuation"
    frames = ws.events(call.call_id)
    at = frames.index(interrupted)
    assert names(frames[at:at + 3]) == ["bot.interrupted", "turn.continued",
                                        "message.confirmed"]


def test_cancel_and_clear(sim: Simulator, ws: WsClient, call: SimCall) -> None:
    sim.words_per_second = 50
    ws.reply(call.call_id, " ".join(["one"] * 30), "", message_id="msg_1")
    ws.reply(call.call_id, "two", "", message_id="msg_2")
    call.wait_speaking(5)
    ws.send({"event": "bot.cancel", "call_id": call.call_id})
    cut = ws.expect("bot.interrupted", message_id="msg_1")
    assert cut["reason"] == "cancelled"
    ws.expect("bot.finished", message_id="msg_2")
    ws.reply(call.call_id, " ".join(["three"] * 30), "", message_id="msg_3")
    ws.reply(call.call_id, "four", "", message_id="msg_4")
    call.wait_speaking(5)
    ws.send({"event": "bot.clear", "call_id": call.call_id})
    assert ws.expect("bot.interrupted", message_id="msg_3")["reason"] == "cancelled"
    assert ws.expect("bot.interrupted", message_id="msg_4")["words_spoken"] == 0
    barrier(ws)
    assert not of(ws.frames, "bot.speaking", message_id="msg_4")


def test_greeting_is_spoken_first_and_holds_user_input(sim: Simulator, ws: WsClient) -> None:
    ws.register("greeter", greeting={"en": "Hi! How can I help?", "es": "Hola"})
    sim.words_per_second = 50
    call = sim.start_call("greeter")
    call.say("hello")
    ws.expect("turn.end")
    frames = ws.events(call.call_id)
    assert names(frames)[:2] == ["call.started", "bot.speaking"]
    finished = names(frames).index("bot.finished")
    assert names(frames).index("speech.started") > finished
    assert call.transcript[:2] == [("bot", "Hi! How can I help?", False), ("user", "hello", False)]
