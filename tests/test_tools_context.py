"""Tools that see their call: the call parameter, ephemeral / no_followup, concurrency, timeouts.

Server-side tools are driven by `llm.tool_call` frames from `voicesync.sim` over a real
loopback WebSocket; the client-side loop is covered in tests/llm/test_llm_tool_context.py.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from helpers import CANARY_KEY, until

import voicesync
from voicesync.tools import ToolError, run_tool_calls, tool

if TYPE_CHECKING:
    from voicesync import Call


@tool
def whoami(call: Call, greeting: str = "hi") -> dict[str, Any]:
    """Say who is calling.

    Args:
        greeting: how to greet.
    """
    return {"greeting": greeting, "from": call.from_, "metadata": call.metadata}


def test_the_call_parameter_is_not_the_models() -> None:
    @tool(ephemeral=True, no_followup=True, timeout=2.5)
    def by_name(order_id: str, call) -> str:  # type: ignore[no-untyped-def]
        """Look something up."""
        return f"{order_id} for {call}"

    for t, param in ((whoami, "call"), (by_name, "call")):
        assert t.call_parameter == param
        assert "call" not in t.parameters["properties"]
    assert whoami.parameters == {"type": "object", "properties": {
        "greeting": {"type": "string", "description": "how to greet.", "default": "hi"}}}
    assert (by_name.ephemeral, by_name.no_followup, by_name.timeout) == (True, True, 2.5)
    # The model cannot pass the call itself: its "call" argument is dropped.
    assert by_name.run('{"order_id": "7", "call": "forged"}', call="the call") == "7 for the call"

    class Desk:
        @tool(ephemeral=True)
        def note(self, text: str, call: Call | None = None) -> str:
            """Take a note."""
            return f"{text}/{call}"

    bound = Desk().note
    assert bound.ephemeral and bound.call_parameter == "call"
    assert bound.run({"text": "x"}, call=1) == "x/1"


def test_a_rounds_tools_run_at_the_same_time_with_a_bound() -> None:
    both = threading.Barrier(2, timeout=5)

    @tool
    def meet(n: int) -> int:
        """Wait for the other one."""
        both.wait()  # breaks (BrokenBarrierError) if the two ran one after the other
        return n

    results = run_tool_calls([meet], [("a", "meet", '{"n": 1}'), ("b", "meet", '{"n": 2}')])
    assert [(r.call_id, r.result, r.error) for r in results] == [("a", 1, False), ("b", 2, False)]

    running, peak, lock = [0], [0], threading.Lock()
    release = threading.Event()

    @tool
    def crowd() -> str:
        """Count how many run at once."""
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            if running[0] == 2:
                release.set()
        release.wait(5)
        with lock:
            running[0] -= 1
        return "ok"

    results = run_tool_calls([crowd], [(str(i), "crowd", None) for i in range(5)],
                             max_concurrent=2)
    assert [r.result for r in results] == ["ok"] * 5 and peak[0] == 2


def test_a_slow_tool_times_out_into_an_error_result_and_a_report() -> None:
    release = threading.Event()

    @tool(timeout=0.2)
    def slow() -> str:
        """Hang."""
        release.wait(10)
        return "late"

    @tool(no_followup=True)
    def quick() -> str:
        """Answer at once."""
        return "fast"

    reports: list[ToolError] = []
    started = time.monotonic()
    try:
        results = run_tool_calls([slow, quick], [("1", "slow", None), ("2", "quick", None)],
                                 on_error=reports.append)
        elapsed = time.monotonic() - started
    finally:
        release.set()
    assert results[0].error and "did not finish within 0.2 s" in results[0].text
    assert results[1].result == "fast" and results[1].to_wire() == {
        "tool_call_id": "2", "result": "fast", "no_followup": True}
    assert elapsed < 5, "the timeout was not applied"
    (report,) = reports
    assert report.timed_out and (report.tool, report.tool_call_id) == ("slow", "1")


def _tool_round(sim: Any, simcall: Any, msg_id: str, *calls: tuple[str, dict[str, Any]]
                ) -> dict[str, Any]:
    mark = sim.mark()
    simcall.send_event("llm.tool_call", msg_id=msg_id, tool_calls=[
        {"id": f"tc_{i}", "name": name, "arguments": json.dumps(args)}
        for i, (name, args) in enumerate(calls)])
    return dict(sim.wait_frame(event="llm.tool_result", direction="in", since=mark,
                               msg_id=msg_id, timeout=10).data)


def test_server_side_tools_get_the_call_flags_and_concurrency(sim: Any) -> None:
    both = threading.Barrier(2, timeout=5)

    @tool(ephemeral=True)
    def check_stock(item: str, call: Call) -> dict[str, Any]:
        """Check the stock."""
        call.say("One moment while I check.")  # a filler from inside the tool
        both.wait()
        return {"item": item, "caller": call.from_}

    @tool(no_followup=True)
    def show_card(title: str) -> str:
        """Show a card in the UI."""
        both.wait()
        return title

    @tool(timeout=0.2)
    def stuck() -> str:
        """Never answers in time."""
        release.wait(10)
        return "late"

    release = threading.Event()
    client = voicesync.Client(api_key=CANARY_KEY, url=sim.url)
    errors: list[BaseException] = []
    client.on("error", errors.append)
    try:
        agent = client.agent("shop", llm="openai/gpt-4.1-mini", prompt="Sell.",
                             tools=[whoami, check_stock, show_card, stuck])
        client.connect(timeout=5)
        agent.wait_ready(5)
        create = sim.wait_frame(event="agent.create", direction="in").data
        whoami_wire = next(t for t in create["tools"] if t["function"]["name"] == "whoami")
        assert "call" not in whoami_wire["function"]["parameters"]["properties"]
        simcall = sim.start_call("shop", from_="+15557654321", metadata={"tier": "gold"})

        answer = _tool_round(sim, simcall, "m1", ("whoami", {"greeting": "hello"}))
        assert answer["results"] == [{"tool_call_id": "tc_0", "result": {
            "greeting": "hello", "from": "+15557654321", "metadata": {"tier": "gold"}}}]

        answer = _tool_round(sim, simcall, "m2", ("check_stock", {"item": "tea"}),
                             ("show_card", {"title": "Tea"}))
        assert answer["results"] == [
            {"tool_call_id": "tc_0", "result": {"item": "tea", "caller": "+15557654321"},
             "ephemeral": True},
            {"tool_call_id": "tc_1", "result": "Tea", "no_followup": True}]
        sim.wait_frame(event="bot.reply", direction="in", call_id=simcall.call_id,
                       text="One moment while I check.")

        answer = _tool_round(sim, simcall, "m3", ("stuck", {}))
        (result,) = answer["results"]
        assert "did not finish within 0.2 s" in result["result"]["error"]
        report = until(lambda: next((e for e in errors if isinstance(e, ToolError)), None),
                       5, "the tool timeout on the error event")
        assert report.timed_out and report.call_id == simcall.call_id
        assert agent.calls[0].status == "active"
    finally:
        release.set()
        client.close()


@pytest.mark.parametrize("annotation", ["name", "type"])
def test_a_tool_can_end_the_call_it_serves(sim: Any, annotation: str) -> None:
    if annotation == "name":
        @tool
        def goodbye(call) -> str:  # type: ignore[no-untyped-def]
            """Hang up."""
            call.hangup()
            return "bye"
        end = goodbye
    else:
        @tool
        def farewell(conversation: voicesync.Call) -> str:
            """Hang up."""
            conversation.hangup()
            return "bye"
        end = farewell

    client = voicesync.Client(api_key=CANARY_KEY, url=sim.url)
    try:
        agent = client.agent("desk", llm="openai/gpt-4.1-mini", prompt="Help.", tools=[end])
        client.connect(timeout=5)
        agent.wait_ready(5)
        simcall = sim.start_call("desk")
        simcall.send_event("llm.tool_call", msg_id="m1", tool_calls=[
            {"id": "tc_0", "name": end.name, "arguments": "{}"}])
        # The call is over, so no result follows: the SDK drops it for the ended call.
        sim.wait_frame(event="call.hangup", direction="in", call_id=simcall.call_id)
    finally:
        client.close()


def test_a_chat_sessions_tool_round_is_answered_once(sim: Any) -> None:
    @tool
    def price(sku: str, call: Call | None = None) -> dict[str, Any]:
        """The price of an item."""
        return {"sku": sku, "price": 3.5, "in_a_call": call is not None}

    client = voicesync.Client(api_key=CANARY_KEY, url=sim.url)
    try:
        agent = client.agent("shop", llm="openai/gpt-4.1-mini", prompt="Sell.", tools=[price])
        client.connect(timeout=5)
        agent.wait_ready(5)
        mark = sim.mark()
        frame = {"event": "llm.tool_call", "agent_id": "shop", "call_id": "chat-42",
                 "msg_id": "c1", "tool_calls": [
                     {"id": "tc_0", "name": "price", "arguments": '{"sku": "tea"}'}]}
        sim.send(frame)
        sim.send(frame)  # the platform may re-send a round: it is answered once
        answer = sim.wait_frame(event="llm.tool_result", direction="in", since=mark,
                                call_id="chat-42").data
        assert answer == {"event": "llm.tool_result", "call_id": "chat-42", "msg_id": "c1",
                          "results": [{"tool_call_id": "tc_0", "result": {
                              "sku": "tea", "price": 3.5, "in_a_call": True}}]}
        sim.send({**frame, "msg_id": "c2"})
        sim.wait_frame(event="llm.tool_result", direction="in", since=mark, msg_id="c2")
        assert len([f for f in sim.frames_since(mark) if f.event == "llm.tool_result"]) == 2
    finally:
        client.close()
