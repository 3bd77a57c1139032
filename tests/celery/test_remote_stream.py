"""The worker's RemoteReplyStream against a real Redis, without Celery: the ReplyStream
contract (write/aborted/on_abort/end/with) and what it puts on the wire."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
import redis
from helpers import until

import voicesync
from voicesync.celery import RemoteReplyStream, stop_abort_listeners
from voicesync.celery._listener import listener_for
from voicesync.celery._wire import ABORT, CallInfo, Payload, ctl_key, entries, frame
from voicesync.celery.local import RedisServer

HEARTBEAT = 0.2


@pytest.fixture
def rdb(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    client.close()


def open_stream(rdb: redis.Redis) -> RemoteReplyStream:
    turn = voicesync.Turn(name="turn.end", call_id="CA1", raw={}, id=1, message_id="u1",
                          text="hi", confidence=1.0, probability=1.0, latency_ms=0.0,
                          language=None)
    message_id = f"msg_{uuid.uuid4().hex[:12]}"  # fresh keys: the listener reads ctl from 0
    payload = Payload("vs-test", f"vs-test:up:{message_id}", message_id, HEARTBEAT, turn,
                      CallInfo(id="CA1", agent_id="a"))
    return RemoteReplyStream(rdb, payload).open()


@pytest.fixture
def remote(rdb: redis.Redis) -> Iterator[RemoteReplyStream]:
    stream = open_stream(rdb)
    yield stream
    stream.end()


def sent(rdb: redis.Redis, stream: RemoteReplyStream) -> list[tuple[str, str]]:
    up = f"vs-test:up:{stream.message_id}"
    return [(kind, text) for _, (_, kind, text) in entries(rdb.xrange(up)) if kind != "beat"]


def abort_from_socket(rdb: redis.Redis, stream: RemoteReplyStream, reason: str) -> None:
    rdb.xadd(ctl_key("vs-test", stream.message_id), frame(stream.message_id, ABORT, reason))


def test_chunks_go_up_in_order_and_end_once(rdb, remote: RemoteReplyStream) -> None:
    with remote:
        assert remote.write("Hello ") and remote.write("") and remote.write("world")
    assert not remote.end()
    assert sent(rdb, remote) == [("start", ""), ("chunk", "Hello "), ("chunk", "world"),
                                 ("end", "")]
    assert remote.text == "Hello world" and remote.ended and not remote.aborted
    with pytest.raises(voicesync.ReplyStreamClosedError):
        remote.write("more")


def test_an_abort_from_the_socket_process_sets_aborted_and_runs_the_callbacks(
        rdb, remote: RemoteReplyStream) -> None:
    ran: list[str] = []
    remote.on_abort(lambda s: ran.append(threading.current_thread().name))
    assert not remote.aborted and not remote.wait_aborted(0.01)
    abort_from_socket(rdb, remote, "bot.interrupted")
    assert remote.aborted.wait(2.0) and bool(remote.aborted)
    assert remote.abort_reason == "bot.interrupted"
    assert ran == ["voicesync-abort-listener"]
    assert remote.write("late") is False
    late: list[object] = []
    remote.on_abort(late.append)  # already aborted: runs at once, here
    assert late == [remote]
    assert not remote.end()
    assert sent(rdb, remote) == [("start", "")]  # nothing echoed back


def test_an_exception_in_the_block_aborts_with_error_and_propagates(
        rdb, remote: RemoteReplyStream) -> None:
    with pytest.raises(RuntimeError), remote:
        remote.write("Let me")
        raise RuntimeError("boom")
    assert remote.abort_reason == "error"
    assert sent(rdb, remote)[-1] == ("abort", "error")


def test_pipe_stops_and_closes_the_generator_on_abort(rdb, remote: RemoteReplyStream) -> None:
    closed = threading.Event()

    def tokens() -> Iterator[str]:
        try:
            yield "one "
            abort_from_socket(rdb, remote, "turn.continued")
            remote.aborted.wait(2.0)
            yield "two "
        finally:
            closed.set()

    assert remote.pipe(tokens()) == "one "
    assert closed.is_set() and remote.abort_reason == "turn.continued"


def test_a_busy_task_still_heartbeats(rdb, remote: RemoteReplyStream) -> None:
    up = f"vs-test:up:{remote.message_id}"
    until(lambda: sum(1 for _, (_, k, _) in entries(rdb.xrange(up)) if k == "beat") >= 2,
          5 * HEARTBEAT + 2.0, "two heartbeats")


def test_a_finished_reply_leaves_only_expiring_keys(rdb, remote: RemoteReplyStream) -> None:
    with remote:
        remote.write("bye")
    assert not rdb.exists(ctl_key("vs-test", remote.message_id))
    wake = listener_for(rdb, "vs-test").wake_key
    assert 0 < rdb.ttl(wake) <= 3600


def test_one_listener_thread_serves_every_stream_of_the_process(
        rdb, remote: RemoteReplyStream) -> None:
    threads = threading.active_count()
    others = [open_stream(rdb) for _ in range(20)]
    assert threading.active_count() == threads  # no thread per stream
    assert {s._listener for s in others} == {remote._listener}
    abort_from_socket(rdb, others[7], "bot.interrupted")
    assert others[7].aborted.wait(2.0)
    # A stream added after the read began is heard too (the wake write restarts it).
    late = open_stream(rdb)
    abort_from_socket(rdb, late, "call.ended")
    assert late.aborted.wait(2.0) and late.abort_reason == "call.ended"
    assert not any(s.aborted for i, s in enumerate(others) if i != 7) and not remote.aborted
    for stream in others:
        stream.end()


def test_a_refused_write_surfaces_by_the_end_and_the_connection_is_not_reused_dirty(
        rdb, remote: RemoteReplyStream) -> None:
    # Chunks go up without waiting for Redis's reply; an error reply still ends the reply.
    up = f"vs-test:up:{remote.message_id}"
    rdb.delete(up)
    rdb.set(up, "not a stream")  # every XADD to it now gets WRONGTYPE
    remote.write("lost ")
    assert not remote.end()
    rdb.delete(up)
    other = open_stream(rdb)  # the pool hands out a connection with no stale replies
    with other:
        assert other.write("fine")
    assert sent(rdb, other) == [("start", ""), ("chunk", "fine"), ("end", "")]


def listener_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "voicesync-abort-listener"]


def test_stop_ends_the_listener_thread_and_aborts_what_it_served(rdb) -> None:
    stream = open_stream(rdb)
    assert listener_threads()
    assert stop_abort_listeners(2.0)  # the thread ends within the deadline, not in 30 s
    assert not listener_threads()
    assert stream.aborted.is_set() and stream.abort_reason == "disconnected"
    # A reply started later gets a listener of its own, which hears aborts again.
    later = open_stream(rdb)
    assert later._listener is not stream._listener and listener_threads()
    abort_from_socket(rdb, later, "bot.interrupted")
    assert later.aborted.wait(2.0) and later.abort_reason == "bot.interrupted"
    assert stop_abort_listeners(2.0) and not listener_threads()
