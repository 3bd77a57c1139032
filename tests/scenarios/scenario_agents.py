"""Agents the scenario tests call: well-behaved, slow, and one that talks past a barge-in."""

from __future__ import annotations

import threading
from typing import Any

import voicesync

STORY = "Once upon a time there was a little robot who lived in a lighthouse by the sea."


class Echo(voicesync.Agent):
    id = "echo"
    greeting = "Hi! I repeat whatever you say."

    def on_turn(self, turn: Any, call: Any, history: Any) -> None:
        if "story" in turn.text.lower():
            call.reply(STORY)
        elif "bye" in turn.text.lower():
            call.say("Goodbye!").wait(timeout=10)
            call.hangup()
        else:
            call.reply(f"You said: {turn.text.rstrip('.!?')}.")


class Slow(Echo):
    """Thinks for `delay` seconds before every answer (a slow model, say)."""

    id = "slow"
    delay = 0.25

    def on_turn(self, turn: Any, call: Any, history: Any) -> None:
        threading.Event().wait(self.delay)  # the agent's own latency, on its handler thread
        super().on_turn(turn, call, history)


class Rambler(Echo):
    """Goes on with its story after being interrupted: the bug a barge-in budget catches."""

    id = "rambler"

    def on_turn(self, turn: Any, call: Any, history: Any) -> None:
        if "story" in turn.text.lower():
            call.reply(STORY)
            return
        call.say("As I was saying, the robot loved the sea.")
        call.reply(f"You said: {turn.text}")


def press_two(ctx: Any) -> None:
    """A Python hook step for scenario files (`- python: press_two`)."""
    ctx.call.press("2")


class Keypad(Echo):
    """Echo that also answers key presses."""

    id = "keypad"

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self.on("call.dtmf_received", lambda event, call: call.say(f"You pressed {event.digit}."))
