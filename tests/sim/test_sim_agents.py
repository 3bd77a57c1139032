"""Agent registration, conflicts, capacity, channels and their release (§2.3-§2.6, §9.1)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sim_support import WsClient, barrier

from voicesync.sim import Simulator


@pytest.mark.parametrize(("raw", "slug"), [
    ("support", "support"), ("futbolAgent", "futbolagent"), ("My Agent", "my-agent"),
    ("  a__b--c!! ", "a-b-c"), ("Ünïcode_Bot", "ncode-bot"),
])
def test_agent_created_echoes_the_slug(sim: Simulator, ws: WsClient, raw: str, slug: str) -> None:
    assert ws.register(raw) == slug
    agent = sim.wait_agent(raw, timeout=5)
    assert agent.agent_id == slug and agent.raw_id == raw and agent.conn_id == sim.connections[0]


def test_unusable_id_gets_registration_error(ws: WsClient) -> None:
    ws.send({"event": "agent.create", "agent_id": "!!!"})
    error = ws.expect("error")
    assert error["code"] == "REGISTRATION_ERROR" and error["agent_id"] == "!!!"


def test_config_is_stored_and_configure_merges(sim: Simulator, ws: WsClient) -> None:
    ws.register("support", voice="elevenlabs/sarah", language="en", greetingInChat=True)
    ws.send({"event": "agent.configure", "agent_id": "support", "language": "fr"})
    assert ws.expect("agent.configured") == {"event": "agent.configured", "agent_id": "support"}
    config = sim.agents["support"].config
    assert config == {"voice": "elevenlabs/sarah", "language": "fr", "greetingInChat": True}


def test_re_create_on_the_same_connection_is_acked(ws: WsClient) -> None:
    ws.register("support")
    mark = ws.mark()
    ws.send({"event": "agent.create", "agent_id": "Support", "language": "es"})
    assert ws.expect("agent.created", start=mark)["agent_id"] == "support"


def test_conflict_modes(sim: Simulator, make_client: Callable[..., WsClient]) -> None:
    first, second = make_client(), make_client()
    first.register("pines")
    second.send({"event": "agent.create", "agent_id": "Pines"})
    error = second.expect("error")
    assert error["code"] == "AGENT_CONFLICT" and error["agent_id"] == "pines"
    assert error["holder_alive"] is True and "retry_after_s" not in error
    sim.conflict_retry_after_s = 120
    mark = second.mark()
    second.send({"event": "agent.create", "agent_id": "pines"})
    assert second.expect("error", start=mark)["retry_after_s"] == 120
    sim.conflict = "fatal"
    mark = second.mark()
    second.send({"event": "agent.create", "agent_id": "pines"})
    fatal = second.expect("error", start=mark)
    assert fatal["code"] == "AGENT_CONFLICT_FATAL" and fatal["holder_alive"] is True
    assert sim.agents["pines"].conn_id == sim.connections[0]


def test_displace_mode_closes_the_holder_with_4001(sim: Simulator,
                                                    make_client: Callable[..., WsClient]) -> None:
    first, second = make_client(), make_client()
    first.register("pines")
    sim.conflict = "displace"
    assert second.register("pines") == "pines"
    assert first.expect("agent.displaced")["agent_id"] == "pines"
    assert first.closed.wait(5)
    assert (first.close_code, first.close_reason) == (4001, "Displaced by new connection")
    assert sim.agents["pines"].conn_id == sim.connections[-1]


def test_capacity_refuses_new_slots(sim: Simulator, ws: WsClient) -> None:
    sim.capacity = 2
    ws.register("a")
    ws.register("b")
    ws.send({"event": "agent.create", "agent_id": "c"})
    error = ws.expect("error")
    assert error["code"] == "SERVER_AT_CAPACITY" and error["agent_id"] == "c"
    assert (error["used"], error["limit"]) == (2, 2)
    assert error["error"].startswith("SERVER_AT_CAPACITY:")
    mark = ws.mark()
    ws.send({"event": "agent.create", "agent_id": "a", "language": "es"})
    assert ws.expect("agent.created", start=mark)["agent_id"] == "a"


def test_phone_numbers_are_unique(sim: Simulator, make_client: Callable[..., WsClient]) -> None:
    first, second = make_client(), make_client()
    first.register("one")
    second.register("two")
    first.send({"event": "channel.add", "agent_id": "one", "type": "phone",
                "ref": "+15550001000", "ringing": True})
    assert first.expect("channel.added") == {"event": "channel.added", "agent_id": "one",
                                             "type": "phone", "ref": "+15550001000"}
    second.send({"event": "channel.add", "agent_id": "two", "type": "phone",
                 "ref": "+15550001000"})
    error = second.expect("error")
    assert error["code"] == "PHONE_IN_USE"
    assert (error["phone"], error["agent_id"]) == ("+15550001000", "two")
    assert sim.agents["one"].channels["+15550001000"]["ringing"] is True
    first.send({"event": "channel.remove", "agent_id": "one", "type": "phone",
                "ref": "+15550001000"})
    assert first.expect("channel.removed")["ref"] == "+15550001000"
    mark = second.mark()
    second.send({"event": "channel.add", "agent_id": "two", "type": "phone",
                 "ref": "+15550001000"})
    assert second.expect("channel.added", start=mark)["agent_id"] == "two"


def test_channel_configure_and_webrtc(ws: WsClient) -> None:
    ws.register("support")
    ws.send({"event": "channel.add", "agent_id": "support", "type": "webrtc"})
    assert ws.expect("channel.added") == {"event": "channel.added", "agent_id": "support",
                                          "type": "webrtc"}
    ws.send({"event": "channel.configure", "agent_id": "support", "ref": "+15550001001",
             "voice": "cartesia/yumiko"})
    assert ws.expect("channel.configured")["ref"] == "+15550001001"


def test_close_releases_agents_numbers_and_lines(sim: Simulator,
                                                 make_client: Callable[..., WsClient]) -> None:
    first, second = make_client(), make_client()
    first.register("support")
    first.send({"event": "channel.add", "agent_id": "support", "type": "phone",
                "ref": "+15550001002"})
    first.expect("channel.added")
    first.send({"event": "line.create", "number": "+15550001003", "config": {}})
    assert first.expect("line.created") == {"event": "line.created", "number": "+15550001003"}
    call = sim.start_call("support")
    first.close()
    assert call.wait_ended(5) == "disconnected"
    assert second.register("support") == "support"
    second.send({"event": "channel.add", "agent_id": "support", "type": "phone",
                 "ref": "+15550001002"})
    second.expect("channel.added")
    second.send({"event": "line.create", "number": "+15550001003"})
    second.expect("line.created")


def test_line_conflict_and_destroy(make_client: Callable[..., WsClient]) -> None:
    first, second = make_client(), make_client()
    first.send({"event": "line.create", "number": "+15550001004"})
    first.expect("line.created")
    second.send({"event": "line.create", "number": "+15550001004"})
    assert second.expect("line.error")["code"] == "LINE_CONFLICT"
    first.send({"event": "line.destroy", "number": "+15550001004"})
    assert first.expect("line.destroyed")["number"] == "+15550001004"


def test_commands_for_someone_elses_agent_are_ignored(
        sim: Simulator, make_client: Callable[..., WsClient]) -> None:
    first, second = make_client(), make_client()
    first.register("support")
    second.send({"event": "agent.configure", "agent_id": "support", "language": "de"})
    second.send({"event": "channel.add", "agent_id": "support", "type": "phone",
                 "ref": "+15550001005"})
    barrier(second)
    assert [f["event"] for f in second.frames] == ["connected", "pong"]
    assert "language" not in sim.agents["support"].config


def test_session_pause_resume_send_are_acked(ws: WsClient) -> None:
    ws.register("support")
    ws.send({"event": "session.pause", "agent_id": "support", "session_id": "wa-1"})
    assert ws.expect("session.paused") == {"event": "session.paused", "agent_id": "support",
                                           "session_id": "wa-1"}
    ws.send({"event": "session.resume", "agent_id": "support", "contact": "+1555"})
    assert ws.expect("session.resumed")["contact"] == "+1555"
    ws.send({"event": "session.send", "agent_id": "support", "text": "hi"})
    ws.expect("session.sent")
