"""REST endpoints on the WebSocket's host:port: tokens, voices, phone numbers."""

from __future__ import annotations

import json

import pytest
import requests
from sim_support import WsClient

from voicesync.sim import Simulator

AUTH = {"Authorization": "Bearer test-key"}


@pytest.mark.parametrize(("path", "channel"), [("/webrtc/token", "webrtc"),
                                               ("/chat/token", "chat"),
                                               ("/stream/token", "stream")])
def test_token_minting(sim: Simulator, ws: WsClient, path: str, channel: str) -> None:
    ws.register("Support Bot")
    response = requests.get(sim.http_url + path, params={"agent_id": "Support Bot"},
                            headers=AUTH, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert isinstance(body["token"], str) and body["token"]
    assert body["server"] == sim.http_url and body["expires_in"] == 60


def test_token_metadata_reaches_the_call(sim: Simulator, ws: WsClient) -> None:
    ws.register("support")
    response = requests.get(sim.http_url + "/webrtc/token", headers=AUTH, timeout=5, params={
        "agent_id": "support", "metadata": json.dumps({"userId": "u1"})})
    call = sim.start_call(token=response.json()["token"])
    started = ws.expect("call.started")
    assert started["transport"] == "webrtc" and call.call_id.startswith("wrt_")
    assert started["metadata"] == {"userId": "u1"}


def test_token_errors(sim: Simulator, ws: WsClient) -> None:
    url = sim.http_url + "/webrtc/token"
    missing = requests.get(url, params={"agent_id": "ghost"}, headers=AUTH, timeout=5)
    assert missing.status_code == 404 and "ghost" in missing.json()["detail"]
    assert requests.get(url, params={"agent_id": "x"}, timeout=5).status_code == 401
    assert requests.get(url, headers=AUTH, timeout=5).status_code == 400
    ws.register("support")
    bad = requests.get(url, params={"agent_id": "support", "metadata": "[1]"}, headers=AUTH,
                       timeout=5)
    assert bad.status_code == 400


def test_api_key_is_checked_when_set() -> None:
    with Simulator(api_key="secret") as sim:
        client = WsClient(sim.url)
        client.connect("secret")
        client.register("support")
        url = sim.http_url + "/chat/token"
        params = {"agent_id": "support"}
        wrong = requests.get(url, params=params, headers=AUTH, timeout=5)
        assert wrong.status_code == 401
        right = requests.post(url, params=params, timeout=5,
                              headers={"Authorization": "Bearer secret"})
        assert right.status_code == 200
        client.close()


def test_voices(sim: Simulator) -> None:
    body = requests.get(sim.http_url + "/api/sdk/voices", timeout=5).json()
    assert body["success"] is True
    assert {v["alias"] for v in body["voices"]} >= {"sarah", "claire"}
    voice = body["voices"][0]
    assert {"id", "name", "languages"} <= set(voice)
    spanish = requests.get(sim.http_url + "/api/sdk/voices", timeout=5,
                           params={"provider": "polly", "language": "es"}).json()["voices"]
    assert [v["alias"] for v in spanish] == ["lucia"]


def test_phone_numbers(sim: Simulator, ws: WsClient) -> None:
    ws.register("support")
    ws.send({"event": "channel.add", "agent_id": "support", "type": "phone",
             "ref": "+15550004000"})
    ws.expect("channel.added")
    url = sim.http_url + "/api/sdk/phone-numbers"
    assert requests.get(url, timeout=5).status_code == 401
    body = requests.get(url, headers=AUTH, timeout=5).json()
    assert body["success"] is True
    numbers = {p["number"]: p for p in body["phones"]}
    assert numbers["+15550004000"]["isSdk"] is True
    assert numbers["+15550100001"]["isSdk"] is False
    assert all({"number", "name", "sid"} <= set(p) for p in body["phones"])


def test_unknown_path_is_404_and_websocket_still_works(sim: Simulator, ws: WsClient) -> None:
    response = requests.get(sim.http_url + "/nope", timeout=5)
    assert response.status_code == 404
    assert requests.get(sim.http_url + "/health", timeout=5).json() == {"ok": True}
    ws.send({"event": "ping"})
    ws.expect("pong")
