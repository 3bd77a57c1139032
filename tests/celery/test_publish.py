"""The offloader's direct publish writes the message Celery's own apply_async writes (on a real
Redis), and steps aside for setups it does not reproduce. The tests that offload to real
workers (test_offload.py and the rest) show the workers run what it writes."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
import redis
from celery import Celery

from voicesync.celery import reply_task
from voicesync.celery._publish import Publisher
from voicesync.celery.local import RedisServer

ARGS = ({"v": 1, "text": "héllo"}, "extra")
KWARGS = {"gap": 0.5}


@pytest.fixture
def app(redis_server: RedisServer) -> Any:
    app = Celery("pubtest", broker=redis_server.url)
    app.conf.task_default_queue = f"pubtest-{uuid.uuid4().hex[:8]}"
    yield app
    app.close()


def _pushed(redis_server: RedisServer, queue: str) -> dict[str, Any]:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        raw = client.rpop(queue)
        assert raw, f"nothing on {queue}"
        return dict(json.loads(raw))
    finally:
        client.close()


def test_the_direct_publish_matches_apply_async(app: Any, redis_server: RedisServer) -> None:
    @reply_task(app, name="pubtest.answer")
    def answer(stream: Any, turn: Any, call: Any) -> None: ...

    queue = app.conf.task_default_queue
    answer.apply_async(args=ARGS, kwargs=KWARGS, task_id="celery-id", retry=False)
    celery_sent = _pushed(redis_server, queue)
    publisher = Publisher(0.5)
    publisher.publish(answer, ARGS, KWARGS, "our-id")
    publisher.close()
    ours = _pushed(redis_server, queue)

    def normalised(message: dict[str, Any], task_id: str) -> dict[str, Any]:
        message["body"] = json.loads(base64.b64decode(message["body"]))
        headers, properties = message["headers"], message["properties"]
        assert headers.pop("id") == headers.pop("root_id") == task_id
        assert properties.pop("correlation_id") == task_id
        for key in ("argsrepr", "kwargsrepr", "origin"):
            assert isinstance(headers.pop(key), str)
        uuid.UUID(properties.pop("delivery_tag"))
        return message

    assert normalised(ours, "our-id") == normalised(celery_sent, "celery-id")


def test_a_task_routed_to_its_own_queue_goes_there(app: Any,
                                                   redis_server: RedisServer) -> None:
    own = f"{app.conf.task_default_queue}-replies"
    app.conf.task_routes = {"pubtest.routed": {"queue": own}}

    @reply_task(app, name="pubtest.routed")
    def routed(stream: Any, turn: Any, call: Any) -> None: ...

    publisher = Publisher(0.5)
    publisher.publish(routed, ARGS, {}, "routed-id")
    publisher.close()
    assert _pushed(redis_server, own)["properties"]["delivery_info"] == {
        "exchange": "", "routing_key": own}


@pytest.mark.parametrize("setting", [{"task_serializer": "pickle"},
                                     {"task_default_priority": 5},
                                     {"broker_transport_options": {"global_keyprefix": "x:"}}])
def test_setups_it_does_not_reproduce_go_through_apply_async(
        app: Any, setting: dict[str, Any]) -> None:
    app.conf.update(setting)

    @reply_task(app, name="pubtest.other")
    def other(stream: Any, turn: Any, call: Any) -> None: ...

    assert Publisher(0.5)._fast_queue(other, ARGS, {}) is None


def test_the_route_is_worked_out_once_per_task_unless_a_router_is_set(app: Any) -> None:
    @reply_task(app, name="pubtest.cached")
    def cached(stream: Any, turn: Any, call: Any) -> None: ...

    publisher = Publisher(0.5)
    route = publisher._fast_queue(cached, ARGS, {})
    app.conf.task_default_queue = "moved"  # settings read once: configure before offloading
    assert publisher._fast_queue(cached, ARGS, {}) == route
    app.conf.task_routes = {"pubtest.cached": {"queue": "own"}}
    routed = Publisher(0.5)
    routed._fast_queue(cached, ARGS, {})
    assert "pubtest.cached" not in routed._routes  # a router may route by the arguments


def test_a_dropped_broker_connection_is_reconnected_once(app: Any,
                                                          redis_server: RedisServer) -> None:
    @reply_task(app, name="pubtest.again")
    def again(stream: Any, turn: Any, call: Any) -> None: ...

    queue = app.conf.task_default_queue
    publisher = Publisher(0.5)
    admin = redis.Redis.from_url(redis_server.url)
    try:
        others = {c["id"] for c in admin.client_list()}  # other tests' clients live on
        publisher.publish(again, ARGS, {}, "before")
        pushers = [c["addr"] for c in admin.client_list() if c["id"] not in others]
        assert len(pushers) == 1
        admin.client_kill(pushers[0])
        publisher.publish(again, ARGS, {}, "after")  # e.g. Redis restarted: no error
        assert [json.loads(raw)["headers"]["id"] for raw in admin.lrange(queue, 0, -1)] == [
            "after", "before"]
    finally:
        publisher.close()
        admin.close()
