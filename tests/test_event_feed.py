"""`client.events()`: every agent's and call's events fanned out to bounded feeds, as an
iterator and as Server-Sent Events, over real sockets to voicesync.sim."""

from __future__ import annotations

import json
import queue
import threading
from typing import Any

import pytest
from helpers import until

import voicesync
from voicesync.events import Event, Turn


def _ready(client: voicesync.Client, *ids: str) -> list[voicesync.Agent]:
    agents = [client.agent(i) for i in ids]
    client.connect(timeout=5)
    for agent in agents:
        agent.wait_ready(5)
    return agents


def _until_named(feed: voicesync.EventFeed, name: str) -> list[Event]:
    seen: list[Event] = []
    while True:
        event = feed.get(timeout=5)
        assert event is not None, f"no {name} after {[e.name for e in seen]}"
        seen.append(event)
        if event.name == name:
            return seen


def test_a_feed_carries_every_agents_call_events_in_order(sim: Any,
                                                           client: voicesync.Client) -> None:
    _ready(client, "support", "sales")
    everything, sales_only = client.events(), client.events(agents=["sales"])
    caller = sim.start_call("support")
    caller.say("is the pool open")
    seen = _until_named(everything, "turn.end")
    assert seen[0].name == "call.started" and seen[0].call_id == caller.call_id
    turn = seen[-1]
    assert isinstance(turn, Turn) and turn.text == "is the pool open"
    assert {e.raw["agent_id"] for e in seen} == {"support"}  # filled in where the wire omits it
    assert sales_only.get(timeout=0.2) is None

    caller.duplicate("user.message")  # the platform sometimes sends one twice
    caller.send_event("audio.metrics", n=1)
    assert everything.get(timeout=5).name == "audio.metrics"  # type: ignore[union-attr]

    one_call = client.events(calls=[caller.call_id])
    other = sim.start_call("sales")
    other.hangup()
    names = [e.name for e in _until_named(sales_only, "call.ended")]
    assert names[0] == "call.started" and "call.ended" in names
    caller.say("thanks")
    assert {e.call_id for e in _until_named(one_call, "turn.end")} == {caller.call_id}
    assert all(e.raw["agent_id"] == "sales"
               for e in _until_named(everything, "call.ended") if e.call_id == other.call_id)

    client.close()
    assert until(lambda: everything.get(timeout=0.1) is None and everything.ended, 5,
                 "the feed to end with the client")


def test_close_ends_every_feed_at_once_and_leaves_what_it_holds(sim: Any,
                                                                client: voicesync.Client) -> None:
    """A reader blocked in `get()` with no timeout wakes on close; a feed's queued events
    are still read after it; a feed opened after close is ended from the start."""
    _ready(client, "support")
    feed, idle = client.events(), client.events(agents=["nobody"])
    sim.start_call("support")
    assert until(lambda: feed._queue, 5, "call.started queued")
    got: queue.Queue[object] = queue.Queue()
    waiter = threading.Thread(target=lambda: got.put(idle.get()), name="test-feed-reader")
    waiter.start()
    client.close()
    assert idle.ended and not feed.ended  # ended, but `feed` still holds events
    assert got.get(timeout=5) is None
    waiter.join(5)
    held = []
    while (event := feed.get()) is not None:  # no timeout: returns once the feed is empty
        held.append(event.name)
    assert held[0] == "call.started" and feed.ended
    late = client.events()
    assert late.ended and late.get() is None


def test_sse_lines_and_the_generator_closing_the_feed(sim: Any,
                                                      client: voicesync.Client) -> None:
    _ready(client, "support")
    feed = client.events()
    lines = feed.sse(keepalive=0.05)
    assert next(lines) == ": voicesync events\n\n"
    assert next(lines) == ": keepalive\n\n"  # nothing happened: a comment keeps it open
    caller = sim.start_call("support")
    message = next(m for m in lines if not m.startswith(":"))
    head, data, blank = message.split("\n", 2)
    assert head == "event: call.started" and blank == "\n"
    frame = json.loads(data.removeprefix("data: "))
    assert frame["call_id"] == caller.call_id and frame["agent_id"] == "support"
    lines.close()  # what Flask and Django do when the browser goes away
    assert feed.closed and feed.get(timeout=0) is None
    assert client._feeds_hub is not None and client._feeds_hub._feeds == ()

    iterated = client.events()
    caller.say("hello")
    for _ in iterated:
        break  # leaving the loop closes the feed
    assert iterated.closed


def test_a_slow_feed_drops_and_reports_without_holding_up_calls(sim: Any,
                                                                client: voicesync.Client
                                                                ) -> None:
    support, = _ready(client, "support")
    errors: queue.Queue[BaseException] = queue.Queue()
    client.on("error", errors.put)
    turns: queue.Queue[str] = queue.Queue()
    support.on("turn.end", lambda turn, call: turns.put(turn.text))
    slow = client.events(max_backlog=5)
    release = threading.Event()
    read: list[str] = []

    def consume() -> None:  # a dashboard that stalls on its first event
        lines = slow.sse(keepalive=5)
        read.append(next(lines))
        release.wait(10)
        read.extend(next(lines) for _ in range(6))
        lines.close()

    reader = threading.Thread(target=consume, name="test-slow-feed")
    reader.start()
    caller = sim.start_call("support")
    for n in range(40):
        caller.send_event("audio.metrics", n=n)
    caller.say("still there")
    assert turns.get(timeout=5) == "still there"  # the reader was never held up

    report = errors.get(timeout=5)
    assert isinstance(report, voicesync.EventsDroppedError)
    assert "client.events()" in str(report) and report.count >= 1
    assert slow.dropped >= 36  # 5 held, the rest of 40+ dropped
    release.set()
    reader.join(5)
    assert not reader.is_alive() and slow.closed
    kept = [m for m in read if m.startswith("event: ")]
    assert kept[0].startswith("event: dropped\n")
    assert json.loads(kept[0].split("data: ", 1)[1])["total"] == slow.dropped
    assert [m.split("\n")[0] for m in kept[1:]] == ["event: call.started"] + [
        "event: audio.metrics"] * 4
    assert client.stats().dropped_events == 0  # handlers' lanes dropped nothing


def test_max_backlog_is_checked(client: voicesync.Client) -> None:
    with pytest.raises(ValueError, match="max_backlog"):
        client.events(max_backlog=0)


def test_a_flask_response_streams_the_feed_and_ends_it_when_the_browser_goes(
        sim: Any, client: voicesync.Client) -> None:
    flask = pytest.importorskip("flask")
    import requests
    from werkzeug.serving import make_server

    _ready(client, "support")
    feeds: list[voicesync.EventFeed] = []
    app = flask.Flask(__name__)

    def events() -> Any:
        feed = client.events()
        feeds.append(feed)
        return flask.Response(flask.stream_with_context(feed.sse(keepalive=0.05)),
                              mimetype="text/event-stream", headers=feed.SSE_HEADERS)

    app.add_url_rule("/events", view_func=events)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    serving = threading.Thread(target=server.serve_forever, name="test-flask", daemon=True)
    serving.start()
    try:
        with requests.get(f"http://127.0.0.1:{server.server_port}/events", stream=True,
                          timeout=5) as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            assert response.headers["X-Accel-Buffering"] == "no"
            caller = sim.start_call("support")
            lines = response.iter_lines(decode_unicode=True)
            assert next(line for line in lines if line.startswith("event: ")) == (
                "event: call.started")
            assert json.loads(next(lines).removeprefix("data: "))["call_id"] == caller.call_id
        until(lambda: feeds[0].closed, 5, "the feed to close after the browser left")
    finally:
        server.shutdown()
        serving.join(5)
