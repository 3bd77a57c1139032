"""Handshake, heartbeat and the WebSocket endpoint (docs/protocol.md §1, §2.2, §9.1)."""

from __future__ import annotations

from collections.abc import Callable

from sim_support import WsClient, barrier

from voicesync.sim import Simulator


def test_connect_gets_connected_with_org(ws: WsClient) -> None:
    assert ws.frames[0] == {"event": "connected", "org_id": "org_sim"}


def test_ping_gets_pong_with_epoch_ms_timestamp(ws: WsClient) -> None:
    ws.send({"event": "ping"})
    pong = ws.expect("pong")
    assert isinstance(pong["timestamp"], int) and pong["timestamp"] > 1_600_000_000_000


def test_any_path_is_accepted(sim: Simulator) -> None:
    client = WsClient(sim.url, path="/some/other/path")
    try:
        client.connect()
    finally:
        client.close()


def test_wrong_key_is_refused_with_1008() -> None:
    with Simulator(api_key="right") as sim:
        client = WsClient(sim.url)
        client.send({"event": "connect", "api_key": "wrong"})
        error = client.expect("error")
        assert error == {"event": "error", "code": "INVALID_KEY", "error": "Invalid API key"}
        assert client.closed.wait(5)
        assert client.close_code == 1008
        client.close()
        good = WsClient(sim.url)
        good.connect("right")
        good.close()


def test_empty_key_is_refused(make_client: Callable[..., WsClient]) -> None:
    client = make_client(connect=False)
    client.send({"event": "connect", "api_key": ""})
    assert client.expect("error")["code"] == "INVALID_KEY"
    assert client.closed.wait(5) and client.close_code == 1008


def test_reject_mode_refuses_every_key(sim: Simulator,
                                       make_client: Callable[..., WsClient]) -> None:
    sim.handshake = "reject"
    client = make_client(connect=False)
    client.send({"event": "connect", "api_key": "anything"})
    assert client.expect("error")["code"] == "INVALID_KEY"


def test_silent_mode_never_answers(sim: Simulator, make_client: Callable[..., WsClient]) -> None:
    sim.handshake = "silent"
    client = make_client(connect=False)
    client.send({"event": "connect", "api_key": "k"})
    barrier(client)
    assert [f["event"] for f in client.frames] == ["pong"]


def test_commands_before_connect_are_ignored(sim: Simulator,
                                             make_client: Callable[..., WsClient]) -> None:
    client = make_client(connect=False)
    client.send({"event": "agent.create", "agent_id": "early"})
    barrier(client)
    assert "early" not in sim.agents
    client.connect()
    assert client.register("early") == "early"
