"""The worker's claim (one Redis command) and what is prepared before the first reply, on a
real Redis without Celery workers: claimed, redelivered, superseded; the worker's
connection opened at start; an Offloader's tasks prepared by `start`."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery import Celery

import voicesync
from voicesync.celery import (
    Offloader,
    OffloadUnavailableError,
    RemoteReplyStream,
    _task,
    reply_task,
)
from voicesync.celery._wire import ABORT, LOST, CallInfo, Payload, ctl_key, entries, frame
from voicesync.celery.local import RedisServer

TURN = voicesync.Turn(name="turn.end", call_id="CA1", raw={}, id=1, message_id="u1",
                      text="hi", confidence=1.0, probability=1.0, latency_ms=0.0,
                      language=None)


@pytest.fixture
def rdb(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    client.close()


def answer(stream: Any, turn: Any, call: Any) -> None:
    stream.write("hi")


def payload() -> Payload:
    message_id = f"msg_{uuid.uuid4().hex[:12]}"
    return Payload("vs-claim", f"vs-claim:up:{message_id}", message_id, 1.0, TURN,
                   CallInfo(id="CA1", agent_id="a"))


def stream_for(rdb: redis.Redis, sent: Payload) -> RemoteReplyStream:
    stream = RemoteReplyStream(rdb, sent)
    stream.listen()
    return stream


def up_frames(rdb: redis.Redis, sent: Payload) -> list[tuple[str, str]]:
    return [(kind, text) for _, (_, kind, text) in entries(rdb.xrange(sent.up))]


def test_a_claim_announces_the_start_and_a_second_one_reports_the_reply_lost(rdb) -> None:
    sent = payload()
    first = stream_for(rdb, sent)
    assert _task.claim(first, sent) == ("claimed", "")
    assert up_frames(rdb, sent) == [("start", "")]
    assert rdb.xlen(first.wake_key) >= 1  # the listener's read was restarted
    # A redelivered task: the same message id, another stream (as in another worker).
    again = stream_for(rdb, sent)
    assert _task.claim(again, sent) == ("duplicate", "")
    assert up_frames(rdb, sent) == [("start", ""), (ABORT, LOST)]
    first.end()
    again.forget()


def test_a_reply_aborted_while_queued_is_superseded_and_never_announced(rdb) -> None:
    sent = payload()
    rdb.xadd(ctl_key(sent.namespace, sent.message_id),
             frame(sent.message_id, ABORT, "turn.continued"))  # type: ignore[arg-type]
    stream = stream_for(rdb, sent)
    assert _task.claim(stream, sent) == ("superseded", "turn.continued")
    assert up_frames(rdb, sent) == []
    stream.forget()


def test_a_worker_opens_its_redis_connection_when_it_starts(redis_server: RedisServer) -> None:
    app = Celery("warmtest", broker=redis_server.url)
    reply_task(app)(answer)
    client = _task.redis_client(redis_server.url)
    client.connection_pool.disconnect()  # as a worker process that has not started
    pool: Any = client.connection_pool
    assert not any(c._sock is not None for c in pool._available_connections)
    _task._warm_up()  # what Celery's worker_ready / worker_process_init signals run
    assert any(c._sock is not None for c in pool._available_connections)
    app.close()


def test_start_prepares_the_tasks_broker_connection(redis_server: RedisServer) -> None:
    app = Celery("preptest", broker=redis_server.url)
    task = reply_task(app)(answer)
    with Offloader(redis_server.url).start(task) as off:
        brokers: Any = off._publisher._brokers
        assert brokers[redis_server.url]._conn._sock is not None  # connected before a turn
    app.close()
    gone = Celery("preptest2", broker="redis://127.0.0.1:1/0")
    unreachable = reply_task(gone, name="gone.answer")(answer)
    threads = threading.active_count()
    with pytest.raises(OffloadUnavailableError):
        Offloader(redis_server.url).start(unreachable)
    assert threading.active_count() == threads  # nothing left running
    gone.close()
