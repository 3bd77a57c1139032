"""ReplyStream frame rules (docs/protocol.md §4.3) and its thread-safety, on a recording sender."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from voicesync import ReplyStream, ReplyStreamClosedError


class Recorder:
    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.done: list[ReplyStream] = []
        self._lock = threading.Lock()

    def send(self, frame: dict[str, Any]) -> bool:
        with self._lock:
            self.frames.append(frame)
        return True

    def stream(self, in_reply_to: str = "U1") -> ReplyStream:
        return ReplyStream("C", "M", in_reply_to, self.send, self.done.append)

    def actions(self) -> list[str]:
        return [f["action"] for f in self.frames]


def test_lazy_start_chunks_then_one_end() -> None:
    rec = Recorder()
    with rec.stream() as s:
        assert rec.frames == []
        assert s.write("Hello") is True
        s.write(" world")
    assert rec.frames == [
        {"event": "bot.reply.stream", "call_id": "C", "message_id": "M", "action": "start",
         "in_reply_to": "U1"},
        {"event": "bot.reply.stream", "call_id": "C", "message_id": "M", "action": "chunk",
         "token": "Hello"},
        {"event": "bot.reply.stream", "call_id": "C", "message_id": "M", "action": "chunk",
         "token": " world"},
        {"event": "bot.reply.stream", "call_id": "C", "message_id": "M", "action": "end"},
    ]
    assert s.ended and not s.aborted and s.text == "Hello world"
    assert rec.done == [s]


def test_empty_end_sends_start_then_end() -> None:
    rec = Recorder()
    assert rec.stream().end() is True
    assert rec.actions() == ["start", "end"]


def test_abort_before_start_sends_nothing() -> None:
    rec = Recorder()
    s = rec.stream()
    assert s.abort("turn.continued") is True
    assert rec.frames == [] and s.aborted and bool(s.aborted) and s.abort_reason == "turn.continued"
    assert s.end() is False and s.write("x") is False
    assert rec.frames == []


def test_abort_after_start_sends_end_once_and_runs_callbacks_on_aborting_thread() -> None:
    rec = Recorder()
    s = rec.stream()
    seen: list[str] = []
    s.on_abort(lambda st: seen.append(threading.current_thread().name))
    s.write("a")
    t = threading.Thread(target=s.abort, args=("bot.interrupted",), name="aborter")
    t.start()
    t.join(5)
    assert seen == ["aborter"]
    assert s.abort() is False and s.end() is False
    assert rec.actions() == ["start", "chunk", "end"]


def test_write_after_end_raises_a_clear_error() -> None:
    s = Recorder().stream()
    s.end()
    with pytest.raises(ReplyStreamClosedError, match="has ended"):
        s.write("late")


def test_exception_in_block_aborts_and_propagates() -> None:
    rec = Recorder()
    with pytest.raises(RuntimeError), rec.stream() as s:
        s.write("partial")
        raise RuntimeError("llm failed")
    assert s.aborted and s.abort_reason == "error"
    assert rec.actions() == ["start", "chunk", "end"]


def test_on_abort_after_abort_runs_at_once() -> None:
    s = Recorder().stream()
    s.abort()
    ran = threading.Event()
    s.on_abort(lambda _: ran.set())
    assert ran.is_set()


def test_pipe_stops_on_abort_and_closes_the_generator() -> None:
    rec = Recorder()
    s = rec.stream()
    closed = threading.Event()

    def tokens() -> Any:
        try:
            for i in range(100):
                if i == 3:
                    s.abort()
                yield f"t{i} "
        finally:
            closed.set()

    assert s.pipe(tokens()) == "t0 t1 t2 "
    assert closed.is_set()
    assert rec.actions() == ["start", "chunk", "chunk", "chunk", "end"]


OPS = st.lists(st.sampled_from(["write", "end", "abort"]), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(plans=st.lists(OPS, min_size=2, max_size=4))
def test_concurrent_write_end_abort_send_exactly_one_end_and_nothing_after(
        plans: list[list[str]]) -> None:
    rec = Recorder()
    s = rec.stream()
    barrier = threading.Barrier(len(plans))

    def run(plan: list[str]) -> None:
        barrier.wait(5)
        for op in plan:
            if op == "write":
                with contextlib.suppress(ReplyStreamClosedError):
                    s.write("x")
            elif op == "end":
                s.end()
            else:
                s.abort("turn.continued")

    threads = [threading.Thread(target=run, args=(p,)) for p in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    actions = rec.actions()
    ended = any(op in ("end", "abort") for plan in plans for op in plan)
    if ended:
        assert s.ended
    assert actions.count("end") == (1 if s.ended and "start" in actions else 0)
    assert actions.count("start") <= 1
    if actions:
        assert actions[0] == "start"
    if "end" in actions:
        assert actions[-1] == "end"
