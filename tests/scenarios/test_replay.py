"""Record a session to JSONL and replay it against an agent, reporting divergences."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scenario_agents import Echo

import voicesync
from voicesync.scenarios import Scenario, read_recording, replay
from voicesync.scenarios._replay import exchanges

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ev-replay.json"
MARAVILLA = ("Hello! Thanks for calling Maravilla Cleaners. How can I help you with your "
             "cleaning needs today?")


class Maravilla(voicesync.Agent):
    id = "dev-maravilla"

    def on_turn(self, turn: Any, call: Any, history: Any) -> None:
        call.reply(MARAVILLA)


class Repeater(voicesync.Agent):
    id = "repeater"  # no greeting

    def on_turn(self, turn: Any, call: Any, history: Any) -> None:
        call.reply(f"You said: {turn.text.rstrip('?')}.")


class Polite(Echo):
    id = "polite"

    def on_turn(self, turn: Any, call: Any, history: Any) -> None:
        call.reply(f"Thank you for saying: {turn.text}")


def test_a_recorded_run_replays_without_divergence_and_finds_a_changed_agent(
        tmp_path: Path) -> None:
    recorded = (Scenario(Echo).say("Hello there").say("Tell me a story")
                .barge_in("Stop", after_words=3).run().check())
    path = recorded.save(tmp_path / "echo.jsonl")
    frames = read_recording(path)
    assert [e.line for e in exchanges(frames)] == [None, "Hello there", "Tell me a story",
                                                   "Stop"]
    same = replay(path, Echo)
    assert same.ok, (same.divergences, same.result.report())
    changed = replay(path, Polite)
    assert not changed.ok
    first = changed.divergences[0]
    assert first.turn == 1 and first.now == ["Thank you for saying: Hello there"]
    assert str(first) == ("turn 1 \"Hello there\": recorded ['You said: Hello there.'], "
                          "now ['Thank you for saying: Hello there']")


def test_the_captured_platform_fixture_replays() -> None:
    frames = read_recording(FIXTURE)
    script = exchanges(frames)
    # Its duplicated user.message / message.confirmed frames count once.
    assert [(e.line, e.replies) for e in script] == [(None, []), ("Hello?", [MARAVILLA])]
    assert replay(FIXTURE, Maravilla).ok
    echo = replay(FIXTURE, Repeater)
    assert [str(d) for d in echo.divergences] == [
        f"turn 1 \"Hello?\": recorded ['{MARAVILLA}'], now ['You said: Hello.']"]
