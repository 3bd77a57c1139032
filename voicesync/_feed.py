"""`client.events()`: every agent's and call's events, fanned out to readers such as a
dashboard's Server-Sent Events response.

The reader thread offers each frame of an agent or a call to every open feed (one
lock-protected append each, never a wait): a feed more than `max_backlog` events behind
drops the new event, counts it and has it reported like a lagging handler's drops. A feed
ends when the client closes (after what it already holds) or when its reader closes it,
stops iterating, or drops the generator `sse()` returned.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

from voicesync import _codec
from voicesync._stats import DropReports
from voicesync.errors import EventsDroppedError
from voicesync.events import Event

if TYPE_CHECKING:
    from typing_extensions import Self

    from voicesync._client_ports import ClientPorts
    from voicesync._lanes import Lanes
    from voicesync.client import Client

#: Headers for an SSE response besides its ``text/event-stream`` type: no caching, and no
#: buffering in a proxy in front (nginx), so each event leaves at once.
SSE_HEADERS: Mapping[str, str] = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# Frames the platform may send twice (docs/protocol.md, PROTOCOL §1.8): a feed carries each
# once, as handlers get it, keyed by (event, call id, message id).
_ONCE = frozenset({"user.message", "message.confirmed", "bot.finished", "llm.tool_call"})
_REMEMBER = 4096  # keys kept for that: duplicates come right after the original


def sse_message(event: str, data: Mapping[str, Any]) -> str:
    """One Server-Sent Events message: its `event` name and `data` as one JSON line."""
    body = json.dumps(dict(data), separators=(",", ":"), default=str)
    return f"event: {event}\ndata: {body}\n\n"


def _typed(frame: dict[str, Any]) -> Event:
    """The frame as a handler's event; a turn from the frame alone (a handler's `Turn` also
    takes the confidence and language of the call's last `user.message`)."""
    if frame["event"] in ("turn.end", "eager.turn"):
        return _codec.turn(frame, _codec.text_field(frame, "message_id"),
                           _codec.text_field(frame, "text"),
                           _codec.number_field(frame, "confidence") or 0.0,
                           _codec.text_field(frame, "language") or None)
    return _codec.event(frame)


class EventFeed:
    """A bounded subscription to the events of a client's agents and calls, in the order
    the platform sent them. Made by `Client.events`; iterate it on any one thread.

    Each item is the `voicesync.events.Event` a handler would get; its `raw` frame always
    has ``agent_id`` (the agent's id). `close()` may be called from any thread.
    """

    SSE_HEADERS = SSE_HEADERS

    def __init__(self, hub: Feeds, agents: frozenset[str] | None, calls: frozenset[str] | None,
                 max_backlog: int) -> None:
        self._hub = hub
        self._agents, self._calls = agents, calls
        self.max_backlog = max_backlog
        self._cond = threading.Condition(threading.Lock())
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._ended = False  # no more offers: the client closed, or this feed did
        self._closed = False
        self._dropped = 0

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def dropped(self) -> int:
        """Events this feed dropped because its reader was `max_backlog` behind."""
        return self._dropped

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event, waiting up to `timeout` s (None: until one comes or the feed
        ends). None on timeout or once the feed has ended and is empty."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._queue:
                remaining = None if deadline is None else deadline - time.monotonic()
                if self._ended or (remaining is not None and remaining <= 0):
                    return None
                self._cond.wait(remaining)
            frame = self._queue.popleft()
        return _typed(frame)

    @property
    def ended(self) -> bool:
        """True once nothing more will come: closed, or the client closed and the events
        it delivered before were read."""
        with self._cond:
            return self._ended and not self._queue

    def __iter__(self) -> Generator[Event, None, None]:
        """Events until the feed ends; leaving the loop (or closing the iterator) closes
        the feed."""
        try:
            while (event := self.get()) is not None:
                yield event
        finally:
            self.close()

    def sse(self, *, keepalive: float = 15.0) -> Generator[str, None, None]:
        """The feed as Server-Sent Events text, for a streaming HTTP response.

        One message per event (``event:`` its name, ``data:`` its frame as JSON), a
        ``dropped`` message when events were dropped (``{"count": n, "total": t}``), and
        a comment every `keepalive` s without events, so a closed browser tab is noticed
        at the next write. Closing the generator (the framework does when the client goes)
        closes the feed.
        """
        reported = 0
        try:
            yield ": voicesync events\n\n"
            while True:
                event = self.get(keepalive)
                dropped = self._dropped
                if dropped != reported:
                    yield sse_message("dropped", {"count": dropped - reported, "total": dropped})
                    reported = dropped
                if event is not None:
                    yield sse_message(event.name, event.raw)
                elif self.ended:
                    return
                else:
                    yield ": keepalive\n\n"
        finally:
            self.close()

    def _end(self) -> None:
        """No more offers; what the feed holds can still be read. The closing thread."""
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def close(self) -> None:
        """Stop the feed and discard what it holds. Idempotent; any thread."""
        with self._cond:
            self._closed = self._ended = True
            self._queue.clear()
            self._cond.notify_all()
        self._hub.remove(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<voicesync.EventFeed {state} backlog={len(self._queue)} dropped={self._dropped}>"

    # ------------------------------------------------------------------ reader thread

    def _offer(self, agent_id: str, call_id: str | None, frame: dict[str, Any]) -> bool:
        """Queue a frame unless it is filtered out; False if it had to be dropped."""
        if ((self._agents is not None and agent_id not in self._agents)
                or (self._calls is not None and call_id not in self._calls)):
            return True
        with self._cond:
            if self._ended:
                return True
            if len(self._queue) >= self.max_backlog:
                self._dropped += 1
                return False
            self._queue.append(frame)
            self._cond.notify()
        return True


class Feeds:
    """A client's open feeds. `publish` runs on the reader thread; the rest on any."""

    def __init__(self, ports: ClientPorts, lanes: Lanes, closed: Callable[[], bool]) -> None:
        self._ports = ports
        self._closed = closed
        self._lock = threading.Lock()
        self._feeds: tuple[EventFeed, ...] = ()  # replaced, never mutated: read without lock
        self._seen: collections.OrderedDict[tuple[str, str, str], None] = (
            collections.OrderedDict())  # reader thread only
        self._drops = _FeedDrops(lanes, ports.timers.schedule, ports.report)

    def open(self, agents: Iterable[str] | None, calls: Iterable[str] | None,
             max_backlog: int) -> EventFeed:
        if max_backlog < 1:
            raise ValueError("max_backlog must be at least 1")
        feed = EventFeed(self, None if agents is None else frozenset(agents),
                         None if calls is None else frozenset(calls), max_backlog)
        with self._lock:
            if self._closed():  # under the lock: `end()` cannot miss a feed opened now
                feed._end()
            else:
                self._feeds = (*self._feeds, feed)
        return feed

    def end(self) -> None:
        """End every feed: the client closed. Its readers get what the feeds hold, then
        the end. Called by `Client.close` after the client counts as closed."""
        with self._lock:
            feeds, self._feeds = self._feeds, ()
        for feed in feeds:
            feed._end()

    def remove(self, feed: EventFeed) -> None:
        with self._lock:
            self._feeds = tuple(f for f in self._feeds if f is not feed)

    def publish(self, frame: Mapping[str, Any]) -> None:
        """Offer an agent's or a call's frame to every feed; connection frames (pings,
        acknowledgements) belong to no agent and are skipped. Reader thread; never waits."""
        feeds = self._feeds
        if not feeds:
            return
        call_id = _codec.call_id_of(frame)
        agent_id = self._agent_of(frame, call_id)
        if agent_id is None or self._repeated(frame, call_id):
            return
        item = {**frame, "agent_id": agent_id}
        for feed in feeds:
            if not feed._offer(agent_id, call_id, item):
                self._drops.dropped()

    def _repeated(self, frame: Mapping[str, Any], call_id: str | None) -> bool:
        name, message_id = frame["event"], _codec.msg_id_of(frame)
        if name not in _ONCE or not message_id:
            return False
        key = (name, call_id or "", message_id)
        if key in self._seen:
            return True
        self._seen[key] = None
        if len(self._seen) > _REMEMBER:
            self._seen.popitem(last=False)
        return False

    def _agent_of(self, frame: Mapping[str, Any], call_id: str | None) -> str | None:
        wire_id = frame.get("agent_id")
        agent = self._ports.agent(wire_id) if isinstance(wire_id, str) else None
        if agent is None:
            call = self._ports.call(call_id) if call_id else None
            agent = call.agent if call is not None else None
        return agent.id if agent is not None else None


class _FeedDrops(DropReports):
    """Drop reports worded for feeds (the base counts the unreported ones)."""

    total = 0

    def dropped(self, *, reporting: bool = False) -> None:
        self.total += 1  # reader thread only
        super().dropped(reporting=reporting)

    def _error(self, count: int) -> EventsDroppedError:
        return EventsDroppedError(
            f"{count} event(s) dropped because an event feed (client.events()) was too far "
            f"behind ({self.total} in all); read it faster or open it with a larger "
            "max_backlog", count=count, total=self.total)


class ClientEvents:
    """Mixed into `Client`: `events()`. Any thread."""

    _feeds_hub: Feeds | None = None
    _feeds_lock = threading.Lock()  # creates the hub once, across clients: rare and short

    def events(self, agents: Iterable[str] | None = None, *, calls: Iterable[str] | None = None,
               max_backlog: int = 1000) -> EventFeed:
        """A feed of every event of this client's agents and their calls, or only of
        `agents` (their ids) and/or `calls` (call ids), from now on, for a dashboard or a
        log shipper.

        Iterate it (``for event in feed``) or serve ``feed.sse()`` as a
        ``text/event-stream`` response. The reader never waits for it: a feed more than
        `max_backlog` events behind drops events, counts them (`EventFeed.dropped`) and
        reports them (an `EventsDroppedError` to `error` handlers). It ends when the
        client closes; close it (or stop iterating) when done. Any thread.
        """
        with self._feeds_lock:
            if self._feeds_hub is None:
                client = cast("Client", self)  # the mixin is only ever a Client
                self._feeds_hub = Feeds(client._ports, client._lanes, lambda: client._life.closed)
            hub = self._feeds_hub
        return hub.open(agents, calls, max_backlog)

    def _end_feeds(self) -> None:
        """End every open feed; `close()` calls it once the client counts as closed."""
        with self._feeds_lock:
            hub = self._feeds_hub
        if hub is not None:
            hub.end()

    def _publish(self, frame: Mapping[str, Any]) -> None:
        """The dispatcher's hook: offer a received frame to the feeds. Reader thread."""
        hub = self._feeds_hub
        if hub is not None:
            hub.publish(frame)
