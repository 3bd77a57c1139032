"""Offloaded turns end to end: simulator call -> socket process -> Redis -> Celery worker -> back.

Real redis-server, two real Celery worker processes, real loopback WebSockets to voicesync.sim.
"""

from __future__ import annotations

import threading
import time

from conftest import Failures, Notes, Turns
from helpers import until

from voicesync.celery import Offloader
from voicesync.sim.model import ModelServer

TEXT = "one two three four five six seven eight nine ten eleven twelve"


def test_tokens_are_spoken_in_order_and_the_handler_returns_at_once(
        sim, agent_with, offloader: Offloader, tasks, notes: Notes) -> None:
    handed: list[tuple[float, object]] = []

    def on_turn(turn, call):
        began = time.monotonic()
        handle = offloader.offload(turn, call, tasks.words, TEXT, gap=0.005)
        handed.append((time.monotonic() - began, handle))

    agent = agent_with(on_turn)
    call = sim.start_call(agent.id)
    call.say("count for me")
    assert call.wait_reply(10.0) == TEXT
    took, handle = handed[0]
    assert handle.wait(5.0) and handle.abort_reason is None
    assert took < 0.5, f"offload() held the handler {took:.3f} s"
    assert notes.wait(handle.message_id, "started:").endswith(f":{call.call_id}:count for me")


def test_many_offloaded_turns_hold_no_thread_and_a_turn_superseded_while_queued_never_starts(
        sim, agent_with, offloader: Offloader, tasks, notes: Notes, gate: str, rdb) -> None:
    turns = Turns()
    agent = agent_with(turns)
    call = sim.start_call(agent.id)
    call.say("hold on")
    turn, live = turns.wait()
    busy = [offloader.offload(turn, live, tasks.held, gate) for _ in range(2)]
    for handle in busy:  # both workers are now occupied
        notes.wait(handle.message_id, "started", timeout=10.0)
    threads = threading.active_count()
    queued = [offloader.offload(turn, live, tasks.words, "never said") for _ in range(40)]
    assert threading.active_count() == threads  # no thread per offloaded turn
    assert offloader.in_flight == 42
    call.hangup()  # supersedes every queued turn: call.ended reaches their control streams
    for handle in queued + busy:
        assert handle.wait(5.0) and handle.abort_reason == "call.ended"
    rdb.rpush(gate, "open", "open")
    # Every queued task is delivered and claims its reply, then sees the abort and stops.
    until(lambda: all(rdb.exists(f"voicesync:claim:{h.message_id}") for h in queued), 20.0,
          "every queued task to be delivered")
    assert not any(notes.of(h.message_id) for h in queued)
    assert offloader.in_flight == 0


def test_barge_in_travels_to_the_worker_and_stops_it(
        sim, agent_with, offloader: Offloader, tasks, notes: Notes) -> None:
    handles = []
    agent = agent_with(lambda turn, call: handles.append(
        offloader.offload(turn, call, tasks.words, "Word word. " * 100, gap=0.02)))
    call = sim.start_call(agent.id)
    call.say("tell me everything")
    call.barge_in("stop please", after_words=3)
    handle = handles[0]
    assert handle.wait(5.0) and handle.abort_reason == "bot.interrupted"
    aborted_here = time.time()
    worker = notes.wait(handle.message_id, "aborted:bot.interrupted")
    assert float(worker.rsplit(":", 1)[1]) - aborted_here < 1.0
    assert 0 < handle.stream.text.count("word") < 100


def test_stream_openai_runs_unchanged_in_the_worker_and_closes_the_provider_stream(
        sim, agent_with, offloader: Offloader, tasks, notes: Notes) -> None:
    with ModelServer(tokens_per_second=40.0) as model:
        model.script("Blah blah. " * 150)
        handles = []
        agent = agent_with(lambda turn, call: handles.append(
            offloader.offload(turn, call, tasks.llm, model.openai_base_url)))
        call = sim.start_call(agent.id)
        call.say("talk to me")
        call.barge_in("enough", after_words=2)
        handle = handles[0]
        assert handle.wait(10.0) and handle.abort_reason == "bot.interrupted"
        notes.wait(handle.message_id, "aborted:bot.interrupted")
        # 450 tokens at 40/s would take 7.5 s: returning now means the HTTP stream was closed.
        notes.wait(handle.message_id, "llm-returned", timeout=3.0)
        assert "blah" in handle.stream.text


def test_a_reply_still_running_when_the_call_ends_is_dropped_and_the_worker_stops(
        sim, agent_with, offloader: Offloader, tasks, notes: Notes,
        failures: Failures) -> None:
    turns = Turns()
    agent = agent_with(turns)
    call = sim.start_call(agent.id)
    call.say("go on")
    turn, live = turns.wait()
    handle = offloader.offload(turn, live, tasks.words, "More more. " * 50, gap=0.02)
    until(lambda: "more" in handle.stream.text, 10.0, "the first chunk")
    call.hangup()
    assert handle.wait(5.0) and handle.abort_reason == "call.ended"
    notes.wait(handle.message_id, "aborted:call.ended")
    said = handle.stream.text
    time.sleep(0.1)  # the worker would have written ~5 more words by now: none may land
    assert handle.stream.text == said
    assert not failures.seen  # a hang-up is not a failure
