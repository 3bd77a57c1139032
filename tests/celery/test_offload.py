"""Offloaded turns end to end: simulator call -> socket process -> Redis -> Celery worker -> back.

Real redis-server, two real Celery worker processes, real loopback WebSockets to voicesync.sim.
"""

from __future__ import annotations

import threading
import time

from celery_support import Rig
from helpers import until

from voicesync.sim.model import ModelServer

TEXT = "one two three four five six seven eight nine ten eleven twelve"


def test_tokens_are_spoken_in_order_and_the_handler_returns_at_once(rig: Rig) -> None:
    handed: list[tuple[float, object]] = []

    def on_turn(turn, call):
        began = time.monotonic()
        handle = rig.offloader.offload(turn, call, rig.tasks.words, TEXT, gap=0.005)
        handed.append((time.monotonic() - began, handle))

    call = rig.sim.start_call(rig.agent(on_turn).id)
    call.say("count for me")
    assert call.wait_reply(10.0) == TEXT
    took, handle = handed[0]
    assert handle.wait(5.0) and handle.abort_reason is None
    assert took < 0.5, f"offload() held the handler {took:.3f} s"
    assert rig.notes.wait(handle.message_id, "started:").endswith(
        f":{call.call_id}:count for me")


def test_many_offloaded_turns_hold_no_thread_and_a_turn_superseded_while_queued_never_starts(
        rig: Rig) -> None:
    call, turn, live = rig.first_turn()
    busy = rig.occupy_workers(turn, live)
    threads = threading.active_count()
    queued = [rig.offloader.offload(turn, live, rig.tasks.words, "never said")
              for _ in range(40)]
    assert threading.active_count() == threads  # no thread per offloaded turn
    assert rig.offloader.in_flight == 42
    call.hangup()  # supersedes every queued turn: call.ended reaches their control streams
    for handle in queued + busy:
        assert handle.wait(5.0) and handle.abort_reason == "call.ended"
    rig.redis.rpush(rig.gate, "open", "open")
    # Every queued task is delivered and claims its reply, then sees the abort and stops.
    until(lambda: all(rig.redis.exists(f"voicesync:claim:{h.message_id}") for h in queued),
          20.0, "every queued task to be delivered")
    assert not any(rig.notes.of(h.message_id) for h in queued)
    assert rig.offloader.in_flight == 0


def test_barge_in_travels_to_the_worker_and_stops_it(rig: Rig) -> None:
    handles = []
    agent = rig.agent(lambda turn, call: handles or handles.append(  # the first turn only
        rig.offloader.offload(turn, call, rig.tasks.words, "Word word. " * 100, gap=0.02)))
    call = rig.sim.start_call(agent.id)
    call.say("tell me everything")
    call.barge_in("stop please", after_words=3)
    handle = handles[0]
    assert handle.wait(5.0) and handle.abort_reason == "bot.interrupted"
    aborted_here = time.time()
    worker = rig.notes.wait(handle.message_id, "aborted:bot.interrupted")
    assert float(worker.rsplit(":", 1)[1]) - aborted_here < 1.0
    assert 0 < handle.stream.text.count("word") < 100


def test_stream_openai_runs_unchanged_in_the_worker_and_closes_the_provider_stream(
        rig: Rig) -> None:
    with ModelServer(tokens_per_second=40.0) as model:
        model.script("Blah blah. " * 150)
        handles = []
        agent = rig.agent(lambda turn, call: handles or handles.append(  # the first turn only
            rig.offloader.offload(turn, call, rig.tasks.llm, model.openai_base_url)))
        call = rig.sim.start_call(agent.id)
        call.say("talk to me")
        call.barge_in("enough", after_words=2)
        handle = handles[0]
        assert handle.wait(10.0) and handle.abort_reason == "bot.interrupted"
        rig.notes.wait(handle.message_id, "aborted:bot.interrupted")
        # 450 tokens at 40/s would take 11 s: returning now means the HTTP stream was closed.
        rig.notes.wait(handle.message_id, "llm-returned", timeout=3.0)
        assert "Blah" in handle.stream.text


def test_a_reply_still_running_when_the_call_ends_is_dropped_and_the_worker_stops(
        rig: Rig) -> None:
    call, turn, live = rig.first_turn()
    handle = rig.offloader.offload(turn, live, rig.tasks.words, "More more. " * 50, gap=0.02)
    until(lambda: "More" in handle.stream.text, 10.0, "the first chunk")
    call.hangup()
    assert handle.wait(5.0) and handle.abort_reason == "call.ended"
    rig.notes.wait(handle.message_id, "aborted:call.ended")
    said = handle.stream.text
    time.sleep(0.1)  # the worker would have written ~5 more words by now: none may land
    assert handle.stream.text == said
    assert not rig.failures.seen  # a hang-up is not a failure


def test_an_app_that_ends_an_offloaded_stream_itself_stops_the_worker(rig: Rig) -> None:
    _, turn, live = rig.first_turn()
    first = rig.offloader.offload(turn, live, rig.tasks.words, "More more. " * 50, gap=0.02)
    until(lambda: "More" in first.stream.text, 10.0, "the first chunk")
    first.stream.end()  # the worker's next chunk finds the stream ended
    assert first.wait(5.0)  # the relay noticed, and told the worker to stop
    rig.notes.wait(first.message_id, "aborted:app")
    second = rig.offloader.offload(turn, live, rig.tasks.words, TEXT)
    assert second.wait(10.0) and second.abort_reason is None
    assert second.stream.text == TEXT + " "
    assert rig.offloader.in_flight == 0
