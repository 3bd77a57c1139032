"""Fixtures for the celery tests: a real redis-server and two real Celery worker processes.

Redis is started once per session on a free loopback port, the workers once per test module;
both are stopped when done. The tests
skip (saying why) only when redis-server is not installed. Each test gets the simulator and
a connected client from the root conftest, and an Offloader with short deadlines.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
import redis
from celery_support import HEARTBEAT, LOST_AFTER, Failures, Notes, Rig

import voicesync
from voicesync.celery import Offloader, stop_abort_listeners
from voicesync.celery.local import URL_ENV, RedisServer, Workers, redis_server_path

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    if redis_server_path() is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server): the "
                    "celery tests need a real Redis")
    with RedisServer() as server:
        yield server


@pytest.fixture(autouse=True, scope="module")
def no_abort_listener_left() -> Iterator[None]:
    """The tests that open RemoteReplyStreams in this process leave no listener thread
    behind for the suite's check that every ``voicesync-`` thread ended."""
    yield
    assert stop_abort_listeners(5.0), "an abort listener thread did not end"


@pytest.fixture(scope="session")
def tasks(redis_server: RedisServer) -> Iterator[ModuleType]:
    """The tasks module, imported with its Celery app pointed at the session's Redis."""
    saved = os.environ.get(URL_ENV)
    os.environ[URL_ENV] = redis_server.url
    import celery_reply_tasks

    # The first publish of a process opens the broker connection and builds the producer
    # (hundreds of milliseconds on a loaded machine): do it here, not in a timed test.
    with celery_reply_tasks.app.producer_or_acquire() as producer:
        producer.connection.ensure_connection(max_retries=3)
    yield celery_reply_tasks
    if saved is None:
        os.environ.pop(URL_ENV, None)
    else:
        os.environ[URL_ENV] = saved


@pytest.fixture(scope="module")  # not session: no idle workers while the rest of the suite runs
def workers(redis_server: RedisServer, tasks: ModuleType) -> Iterator[Workers]:
    """Two worker processes (prefork, one child each), so a killed child is redelivered."""
    with Workers("celery_reply_tasks", redis_server.url, count=2,
                 env={"PYTHONPATH": os.pathsep.join([ROOT, HERE])}) as started:
        yield started


@pytest.fixture
def rig(sim: Any, client: voicesync.Client, tasks: ModuleType, redis_server: RedisServer,
        workers: Workers) -> Iterator[Rig]:
    rdb = redis.Redis.from_url(redis_server.url, decode_responses=True)
    failures = Failures()
    gate = f"gate:{os.urandom(4).hex()}"  # a list the `held` task blocks on
    off = Offloader(redis_server.url, lost_after=LOST_AFTER, heartbeat=HEARTBEAT,
                    on_failure=failures).start()
    yield Rig(sim, client, tasks, redis_server.url, rdb, off, Notes(rdb), failures, gate)
    off.close()
    rdb.rpush(gate, *["open"] * 4)  # release any worker still held
    rdb.expire(gate, 60)
    rdb.close()
