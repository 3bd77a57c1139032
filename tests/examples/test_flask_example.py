"""The Flask example's app over real HTTP: /calls lists live calls, POST /dial dials out."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from examples_support import import_example
from helpers import until
from werkzeug.serving import make_server

import voicesync
from voicesync.sim import Simulator

flask_app = import_example("flask_app.py")


@pytest.fixture
def base_url(voicesync_sim: Simulator, voicesync_client: voicesync.Client
             ) -> Iterator[tuple[str, Any]]:
    agent = voicesync_client.add_agent(flask_app.Concierge(phone=flask_app.LINE))
    agent.wait_ready(timeout=5)
    server = make_server("127.0.0.1", 0, flask_app.create_app(agent), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", agent
    server.shutdown()
    thread.join(5)


def test_calls_lists_a_live_call(voicesync_sim: Simulator, base_url: tuple[str, Any]) -> None:
    url, _ = base_url
    assert requests.get(f"{url}/calls", timeout=5).json() == []
    call = voicesync_sim.start_call("concierge")
    call.wait_reply(timeout=5)
    call.say("When do you close?")
    call.wait_reply(timeout=5)
    listed = until(lambda: requests.get(f"{url}/calls", timeout=5).json(), what="a listed call")
    assert [c["id"] for c in listed] == [call.call_id]
    assert listed[0]["direction"] == "inbound" and listed[0]["to"] == flask_app.LINE
    assert {"role": "user", "content": "When do you close?"} in listed[0]["transcript"]
    call.hangup()
    until(lambda: requests.get(f"{url}/calls", timeout=5).json() == [], what="the call gone")


def test_dial_places_an_outbound_call(voicesync_sim: Simulator,
                                      base_url: tuple[str, Any]) -> None:
    url, _ = base_url
    reply = requests.post(f"{url}/dial", json={"to": "+15550002222"}, timeout=15)
    assert reply.status_code == 201, reply.text
    placed = reply.json()
    assert placed["direction"] == "outbound" and placed["to"] == "+15550002222"
    sim_call = voicesync_sim.wait_call(to="+15550002222", direction="outbound", timeout=5)
    assert sim_call.call_id == placed["id"]
    assert [c["id"] for c in requests.get(f"{url}/calls", timeout=5).json()] == [placed["id"]]


def test_dial_errors_are_http_errors(voicesync_sim: Simulator,
                                     base_url: tuple[str, Any]) -> None:
    url, _ = base_url
    assert requests.post(f"{url}/dial", json={"to": "not a number"}, timeout=5).status_code == 400
    voicesync_sim.dial_script["+15550003333"] = "busy"
    busy = requests.post(f"{url}/dial", json={"to": "+15550003333"}, timeout=15)
    assert busy.status_code == 502 and "busy" in busy.json()["error"]
