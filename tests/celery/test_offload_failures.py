"""Failure semantics of offloaded turns (docs/scaling.md), with real Redis and Celery workers:
a worker that dies or stalls, a task redelivered after a crash, a task that raises, a turn no
worker picks up in time, Redis unreachable (with and without the in-process fallback)."""

from __future__ import annotations

import os
import signal
import time

import pytest
from celery_support import LOST_AFTER, Rig
from helpers import until

from voicesync.celery import LOST, UNSTARTED, Offloader, OffloadUnavailableError
from voicesync.celery.local import RedisServer, _free_port

SLACK = 1.5  # scheduling slack on a loaded 2-core machine, on top of each deadline


def worker_pid(rig: Rig, message_id: str) -> int:
    return int(rig.notes.wait(message_id, "started:", timeout=10.0).split(":")[1])


def test_a_worker_killed_mid_reply_is_reported_lost_and_its_redelivery_never_speaks(
        rig: Rig) -> None:
    _, turn, live = rig.first_turn()
    # A deadline far longer than a redelivery takes: the claim alone must stop the second run.
    with rig.offloader_with(lost_after=20.0) as off:
        handle = off.offload(turn, live, rig.tasks.hang, "Let me think. ")
        pid = worker_pid(rig, handle.message_id)
        os.kill(pid, signal.SIGKILL)  # a prefork child of a worker this session started
        # acks_late + reject_on_worker_lost: the broker delivers the task again; the
        # redelivery finds the claim on the message id, reports the reply lost and stops.
        assert handle.wait(15.0) and handle.abort_reason == LOST
        assert rig.redis.llen(f"deliveries:{handle.message_id}") == 2
        assert rig.failures.event.wait(2.0) and rig.failures.seen == [(handle, LOST)]
        assert [n for n in rig.notes.of(handle.message_id) if n.startswith("started")] == [
            f"started:{pid}"]
        assert handle.stream.text == "Let me think. "


def test_a_stalled_worker_is_cut_off_within_the_deadline_and_stops_when_it_wakes(
        rig: Rig) -> None:
    _, turn, live = rig.first_turn()
    handle = rig.offloader.offload(turn, live, rig.tasks.hang, "Hmm. ")
    pid = worker_pid(rig, handle.message_id)
    os.kill(pid, signal.SIGSTOP)  # frozen: no heartbeat, no tokens
    try:
        stopped = time.monotonic()
        assert handle.wait(LOST_AFTER + SLACK + 1.0) and handle.abort_reason == LOST
        assert time.monotonic() - stopped < LOST_AFTER + SLACK
        assert rig.failures.event.wait(2.0) and rig.failures.seen == [(handle, LOST)]
    finally:
        os.kill(pid, signal.SIGCONT)
    rig.notes.wait(handle.message_id, f"aborted:{LOST}")  # woke up, read the abort, stopped


def test_a_task_that_raises_aborts_with_error_and_the_app_is_told(rig: Rig) -> None:
    _, turn, live = rig.first_turn()
    handle = rig.offloader.offload(turn, live, rig.tasks.fails)
    assert handle.wait(10.0) and handle.abort_reason == "error"
    assert handle.stream.text == "Let me"
    assert rig.failures.event.wait(2.0) and rig.failures.seen == [(handle, "error")]


def test_a_turn_no_worker_starts_in_time_is_aborted_and_never_starts_later(rig: Rig) -> None:
    _, turn, live = rig.first_turn()
    rig.occupy_workers(turn, live)
    with rig.offloader_with(start_within=0.5) as off:
        late = off.offload(turn, live, rig.tasks.words, "too late")
        assert late.wait(0.5 + SLACK) and late.abort_reason == UNSTARTED
        assert rig.failures.event.wait(2.0) and rig.failures.seen == [(late, UNSTARTED)]
        rig.redis.rpush(rig.gate, "open", "open")
        until(lambda: rig.redis.exists(f"voicesync:claim:{late.message_id}"), 10.0,
              "its delivery")
        assert rig.notes.of(late.message_id) == []


def test_redis_unreachable_fails_fast_with_a_typed_error(rig: Rig) -> None:
    _, turn, live = rig.first_turn()
    off = Offloader(f"redis://127.0.0.1:{_free_port()}/0", connect_timeout=0.5)
    began = time.monotonic()
    with pytest.raises(OffloadUnavailableError, match="fallback=True"):
        off.offload(turn, live, rig.tasks.words, "unheard")
    assert time.monotonic() - began < 1.0
    off.close()


def test_with_the_fallback_an_unreachable_redis_means_the_turn_is_answered_in_process(
        rig: Rig) -> None:
    off = Offloader(f"redis://127.0.0.1:{_free_port()}/0", fallback=True)
    handles = []
    agent = rig.agent(lambda turn, call: handles.append(
        off.offload(turn, call, rig.tasks.words, "answered right here")))
    call = rig.sim.start_call(agent.id)
    call.say("anyone there?")
    assert call.wait_reply(10.0) == "answered right here"
    assert handles[0].in_process and handles[0].done
    off.close()


def test_redis_going_away_makes_the_next_offload_fail_fast(rig: Rig) -> None:
    _, turn, live = rig.first_turn()
    own = RedisServer().start()
    off = Offloader(own.url, connect_timeout=0.5).start()
    try:
        own.stop()
        # The relay notices within one read (50 ms); from then on offload refuses at once.
        until(lambda: not off._healthy.is_set(), 2.0, "the relay to notice")
        began = time.monotonic()
        with pytest.raises(OffloadUnavailableError):
            off.offload(turn, live, rig.tasks.words, "unheard")
        assert time.monotonic() - began < 0.1
        assert not live.ended
    finally:
        off.close()
        own.stop()
