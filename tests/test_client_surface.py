"""Client-level parity (docs/parity.md): call events heard on the client, and
`remove_agent`, over real sockets to voicesync.sim."""

from __future__ import annotations

import queue
from typing import Any

from helpers import until

import voicesync


def test_call_events_reach_the_client_after_the_call_and_the_agent(
        sim: Any, client: voicesync.Client) -> None:
    agent = client.agent("support")
    heard: queue.Queue[tuple[str, str]] = queue.Queue()
    client.on("call.started", lambda call: heard.put(("client", "call.started")))
    client.on("turn.end", lambda turn, call: heard.put(("client", turn.text)))
    agent.on("turn.end", lambda turn, call: heard.put(("agent", turn.text)))
    client.on("call.ended", lambda call, reason: heard.put(("client", reason)))
    client.connect(timeout=5)
    agent.wait_ready(5)
    caller = sim.start_call("support")
    call = until(lambda: agent.call(caller.call_id), 5, "the call")
    call.on("turn.end", lambda turn, c: heard.put(("call", turn.text)))
    assert heard.get(timeout=5) == ("client", "call.started")
    caller.say("hello there")
    assert [heard.get(timeout=5) for _ in range(3)] == [
        ("call", "hello there"), ("agent", "hello there"), ("client", "hello there")]
    caller.hangup()
    assert heard.get(timeout=5) == ("client", "hangup")


def test_remove_agent_ends_its_calls_here_and_is_not_registered_again(
        sim: Any, client: voicesync.Client) -> None:
    support, sales = client.agent("support"), client.agent("sales")
    ended: queue.Queue[str] = queue.Queue()
    support.on("call.ended", lambda call, reason: ended.put(reason))
    client.connect(timeout=5)
    support.wait_ready(5)
    sales.wait_ready(5)
    caller = sim.start_call("support")
    call = until(lambda: support.call(caller.call_id), 5, "the call")
    assert client.remove_agent("support") is support
    assert ended.get(timeout=5) == "agent_removed" and call.ended
    assert client.agents == {"sales": sales} and not support.ready
    assert call.say("anyone?").sent is False
    assert client.remove_agent("support") is None
    mark = sim.mark()
    sim.drop()
    # Agents are re-registered in the order they were added: "support" would come first.
    sim.wait_frame(event="agent.create", direction="in", since=mark, agent_id="sales")
    created = [f.data["agent_id"] for f in sim.frames_since(mark)
               if f.direction == "in" and f.event == "agent.create"]
    assert created == ["sales"]
