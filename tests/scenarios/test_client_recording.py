"""`Client.record`: a session with "the platform" (a simulator the client takes for it,
over loopback) recorded to JSONL and replayed as a regression test; the key stays out."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from scenario_agents import Echo

import voicesync
from voicesync._recording import Recorder
from voicesync.errors import ConfigurationError
from voicesync.scenarios import read_recording, replay
from voicesync.scenarios._replay import exchanges
from voicesync.sim import Simulator

CANARY = "sk-live-canary-5f1e2d3c4b5a69788796a5b4"


def _record_a_call(path: Path) -> voicesync.Client:
    """Play a two-turn call on the simulator while the client records; returns the client
    (closed)."""
    with Simulator(virtual_time=True) as sim:
        client = voicesync.Client(api_key=CANARY, url=sim.url)
        try:
            agent = client.add_agent(Echo())
            ended = threading.Event()
            agent.on("call.ended", lambda call, reason: ended.set())
            recorder = client.record(path)
            client.connect(10)
            agent.wait_ready(10)
            client.send({"event": "note", "text": f"my key is {CANARY}"})  # sent: redacted too
            call = sim.start_call("echo", timeout=10)
            call.wait_idle(10)  # the greeting
            call.say("Hello there")
            call.wait_reply(10)
            call.say("Tell me a story")
            call.wait_reply(10)
            call.hangup()
            call.wait_ended(10)
            assert ended.wait(10)  # the client has read the call's last frame
            assert recorder.stop() == path
            assert recorder.dropped == 0
        finally:
            client.close()
    return client


def test_a_recorded_platform_session_replays_against_the_agent(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    _record_a_call(path)
    frames = read_recording(path)
    assert {f.direction for f in frames} == {"in", "out"}
    assert frames[0].direction == "in" and frames[0].event == "connect"
    sent = [f.event for f in frames if f.direction == "in"]
    assert "agent.create" in sent or any(e and e.startswith("agent") for e in sent), sent
    script = exchanges(frames)
    assert [e.line for e in script] == [None, "Hello there", "Tell me a story"]
    assert script[1].replies == ["You said: Hello there."]
    same = replay(path, Echo)
    assert same.ok, (same.divergences, same.result.report())

    class Changed(Echo):
        def on_turn(self, turn: object, call: voicesync.Call, history: object) -> None:
            call.reply("Something else entirely.")

    assert replay(path, Changed).divergences


def test_the_api_key_never_reaches_the_recording(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    _record_a_call(path)
    text = path.read_text(encoding="utf-8")
    assert CANARY not in text and CANARY[4:20] not in text
    connect = json.loads(text.splitlines()[0])
    assert connect["data"] == {"event": "connect", "api_key": "[redacted]"}
    notes = [f.data for f in read_recording(path) if f.event == "note"]
    assert notes == [{"event": "note", "text": "my key is [redacted]"}]


def test_one_recording_at_a_time_and_close_stops_it(tmp_path: Path) -> None:
    client = voicesync.Client(api_key=CANARY, url="ws://127.0.0.1:9")
    recorder = client.record(tmp_path / "a.jsonl")
    with pytest.raises(ConfigurationError, match="already recording"):
        client.record(tmp_path / "b.jsonl")
    client.close()
    assert not recorder.recording
    assert "voicesync-recorder" not in {t.name for t in threading.enumerate()}
    with client.record(tmp_path / "b.jsonl") as second:
        assert second.recording
    assert (tmp_path / "b.jsonl").read_text() == ""


def test_a_full_buffer_drops_frames_instead_of_waiting(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "c.jsonl", CANARY, max_bytes=64)
    recorder.received("x" * 65)  # more than the buffer holds: left out, counted
    recorder.received('{"event":"ping"}')
    recorder.stop()
    assert recorder.dropped == 1
    assert [f.event for f in read_recording(tmp_path / "c.jsonl")] == ["ping"]
