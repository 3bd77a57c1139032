"""The simulator's phone lines, routing and bridges, driven by a bare protocol client
(docs/protocol.md §2.10, §3.9), so the SDK and the simulator check each other."""

from __future__ import annotations

from collections.abc import Callable

from sim_support import WsClient

from voicesync.sim import Simulator

NUMBER = "+15550003000"


def test_a_call_to_a_line_is_routed_in_place_to_an_agent(
        sim: Simulator, make_client: Callable[..., WsClient]) -> None:
    line_side, agent_side = make_client(), make_client()
    line_side.send({"event": "line.create", "number": NUMBER,
                    "config": {"language": "es", "extension_window_ms": 1000}})
    line_side.expect("line.created", number=NUMBER)
    agent_side.register("sales")
    caller = sim.start_call(to=NUMBER, extension="7#")
    started = line_side.expect("call.started", call_id=caller.call_id)
    assert (started["agent_id"], started["extension"], started["owner"],
            started["language"]) == (f"line:{NUMBER}", "7", "line", "es")
    line_side.reply(caller.call_id, "Hola, one moment.")
    assert caller.wait_reply() == "Hola, one moment."
    line_side.send({"event": "set_context", "call_id": caller.call_id, "key": "lang",
                    "value": "es"})
    line_side.send({"event": "call.route", "call_id": caller.call_id, "agent": "nobody",
                    "history": True})
    assert line_side.expect("call.route_failed")["reason"] == "offline"
    line_side.send({"event": "call.route", "call_id": caller.call_id, "agent": "Sales",
                    "context": {"vip": True}, "history": True})
    assert line_side.expect("call.routed")["agent"] == "sales"
    assert line_side.expect("call.ended", call_id=caller.call_id)["reason"] == "routed"
    taken = agent_side.expect("call.started", call_id=caller.call_id)
    assert (taken["agent_id"], taken["owner"], taken["routed_from"], taken["extension"]) == (
        "sales", "agent", f"line:{NUMBER}", "7")
    assert taken["line_transcript"] == [{"who": "line", "text": "Hola, one moment."}]
    at_sales = sim.wait_call(agent="sales")
    assert at_sales.context == {"lang": "es", "vip": True}
    assert at_sales.history == [{"role": "assistant", "content": "Hola, one moment."}]


def test_without_an_extension_window_the_dialled_digits_arrive_as_key_presses(
        sim: Simulator, make_client: Callable[..., WsClient]) -> None:
    ws = make_client()
    ws.send({"event": "line.create", "number": NUMBER, "config": {"extension_window_ms": 0}})
    ws.expect("line.created", number=NUMBER)
    mark = ws.mark()
    caller = sim.start_call(to=NUMBER, extension="42")
    started = ws.expect("call.started", call_id=caller.call_id, start=mark)
    assert started["extension"] is None
    ws.expect("call.dtmf_received", call_id=caller.call_id, digits="42", start=mark)
    keys = [f for f in ws.events(caller.call_id, start=mark)
            if f["event"] == "call.dtmf_received"]
    assert [(k["digit"], k["digits"]) for k in keys] == [("4", "4"), ("2", "42")]
    frames = [f["event"] for f in ws.events(caller.call_id, start=mark)]
    assert frames.index("call.started") < frames.index("call.dtmf_received")


def test_a_route_from_an_agent_call_fails_and_a_dropped_connection_frees_its_line(
        sim: Simulator, make_client: Callable[..., WsClient]) -> None:
    ws = make_client()
    ws.register("support")
    caller = sim.start_call("support")
    ws.send({"event": "call.route", "call_id": caller.call_id, "agent": "support"})
    assert ws.expect("call.route_failed")["reason"] == "swap_failed"
    ws.send({"event": "line.create", "number": NUMBER})
    ws.expect("line.created")
    sim.drop(sim.connections[0])  # releases the connection's line before it returns
    again = make_client()
    again.send({"event": "line.create", "number": NUMBER})
    again.expect("line.created")


def test_a_bridge_carries_each_sides_words_to_the_other(
        sim: Simulator, make_client: Callable[..., WsClient]) -> None:
    ws = make_client()
    ws.register("judge")
    ws.register("desk")
    ws.send({"event": "call.bridge", "agent_id": "judge", "target": "desk",
             "greeting": "Hi desk.", "detect_turn_end": True})
    mine = ws.expect("call.started", agent_id="judge")
    theirs = ws.expect("call.started", agent_id="desk")
    assert (mine["direction"], mine["to"], mine["transport"]) == ("outbound", "desk", "bridge")
    assert (theirs["direction"], theirs["from"]) == ("inbound", "judge")
    heard = ws.expect("turn.end", call_id=theirs["call_id"])
    assert heard["text"] == "Hi desk."
    ws.reply(theirs["call_id"], "Desk here.", in_reply_to=heard["message_id"])
    assert ws.expect("turn.end", call_id=mine["call_id"])["text"] == "Desk here."
    ws.send({"event": "call.hangup", "call_id": mine["call_id"]})
    assert ws.expect("call.ended", call_id=theirs["call_id"])["reason"] == "hangup"
    ws.send({"event": "call.bridge", "agent_id": "judge", "target": "gone",
             "detect_turn_end": True})
    failed = ws.expect("call.ended", reason="offline")
    assert (failed["to"], failed["direction"]) == ("gone", "outbound")
