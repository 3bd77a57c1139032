"""The scripted caller: plays a scenario's steps on one simulated call.

Runs on the thread that runs the scenario. Barge-ins are armed as watchers on the call
before the line whose answer they cut, and fire under the simulator's lock as the chosen
word is spoken, so the point of a barge-in is exact at any speech pace, virtual or real.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from voicesync.scenarios._steps import (
    BargeIn,
    Do,
    Hangup,
    Hear,
    Press,
    Say,
    Silence,
    Step,
    WaitEnd,
)


class StepFailed(Exception):
    """A step could not be played or its check failed; the message says which and why."""


@dataclass
class Context:
    """What a Python hook step gets: the simulator, the call, the agent, the scenario."""

    sim: Any
    call: Any
    agent: Any
    scenario: Any


class _Barge:
    """One armed barge-in: fires `user_turn(text)` at its point of the bot's speech."""

    def __init__(self, caller: Caller, step: BargeIn,
                 then: Callable[[], _Barge | None]) -> None:
        self.step = step
        self.fired = threading.Event()
        self.chained: _Barge | None = None  # the barge-in on the answer to this one
        self._then = then
        self._caller = caller
        self._core = caller.core
        self._timer: Any = None
        words = step.after_words
        self._words = words if words is not None else (
            None if step.after_ms is not None or step.before_first_word or step.during_tool
            else 2)

    def arm(self, *, now: bool = True) -> None:
        """Watch the bot's speech; `now` also judges the message playing at this moment."""
        core = self._core
        if self.step.during_tool:
            self._caller.tool_hooks.append(self._tool_ran)
            return
        with core.lock:
            core.watchers.append(self._watch)
            playing = core.speaker.playing
            if now and playing is not None:
                self._watch("word" if playing.spoken else "speaking", playing)

    def _watch(self, what: str, msg: Any) -> None:
        step = self.step
        if self.fired.is_set():
            return
        first = step.before_first_word and what == "speaking"
        if first or (self._words is not None and len(msg.spoken) >= self._words):
            self._fire()
        elif step.after_ms is not None and self._timer is None:
            clock = self._core.clock
            self._timer = clock.at(msg.started + step.after_ms / 1000,
                                   lambda: self._timed(msg), skippable=True)

    def _unhook(self) -> None:
        if self._watch in self._core.watchers:
            self._core.watchers.remove(self._watch)
        if self._tool_ran in self._caller.tool_hooks:
            self._caller.tool_hooks.remove(self._tool_ran)

    def _tool_ran(self) -> None:
        with self._core.lock:
            if not self.fired.is_set():
                self._fire()

    def _timed(self, msg: Any) -> None:
        with self._core.lock:
            if self._core.speaker.playing is msg and not self.fired.is_set():
                self._fire()
            elif not self.fired.is_set():
                self._timer = None  # the message ended first: wait for the next one

    def _fire(self) -> None:
        core = self._core
        self._unhook()
        self.chained = self._then()  # armed before the line, so it cannot miss the answer
        if core.status == "active":
            core.user_turn(self.step.text)
        self._caller.mark = len(core.transcript)
        self.fired.set()
        core.notify()

    def disarm(self) -> None:
        with self._core.lock:
            self._unhook()


class Caller:
    """Plays steps on `call` (a `voicesync.sim.SimCall`); raises StepFailed on the first
    step that fails."""

    def __init__(self, sim: Any, call: Any, timeout: float, context: Context,
                 resolve: Callable[[str], Callable[[Any], object]], *,
                 tool_hooks: list[Callable[[], None]] | None = None) -> None:
        self.sim = sim
        self.call = call
        self.core = call._core
        self.timeout = timeout
        self.context = context
        self.mark = 0  # transcript length at the last caller action
        self.caller_hung_up = False
        # Called (model server thread) when the agent asks the model to go on after a tool.
        self.tool_hooks = tool_hooks if tool_hooks is not None else []
        self._resolve = resolve

    def play(self, steps: Sequence[Step], *, greeted: bool,
             release: Callable[[], None] = lambda: None) -> None:
        """Play `steps`. `release` is called once a barge-in on the greeting is armed (the
        clock is held until then, so the greeting cannot get ahead of it)."""
        barge = self._arm(steps, 0)
        release()
        if greeted and barge is None:
            self._settle("the greeting")
        for index, step in enumerate(steps):
            if barge is not None and step is barge.step:
                self._wait_barge(barge, index)
                barge = barge.chained
                continue
            if self._over():
                if isinstance(step, (Hear, WaitEnd, Do)):
                    self._one(step, index)
                    continue
                raise StepFailed(f"step {index + 1}: the call is {self.core.status} "
                                 f"({self.core.ended_reason}) before {_name(step)}")
            barge = self._arm(steps, index + 1)
            self._one(step, index, wait=barge is None)

    # -- steps --------------------------------------------------------------------------

    def _one(self, step: Step, index: int, *, wait: bool = True) -> None:
        if isinstance(step, Say):
            self.mark = len(self.call.transcript)
            self.call.say(step.text, timeout=self.timeout)
            if step.wait and wait:
                self._settle(f'the answer to "{step.text}"')
        elif isinstance(step, Press):
            self.mark = len(self.call.transcript)
            self.call.press(step.digits)
            if step.wait and wait:
                self._settle(f"the answer to the keys {step.digits}")
        elif isinstance(step, Hear):
            self._hear(step, index)
        elif isinstance(step, Silence):
            self._silence(step.seconds)
        elif isinstance(step, Hangup):
            self.caller_hung_up = True
            self.call.hangup()
        elif isinstance(step, WaitEnd):
            try:
                self.call.wait_ended(self.timeout)
            except TimeoutError:
                raise StepFailed(f"step {index + 1}: the agent did not end the call within "
                                 f"{self.timeout:g} s") from None
        elif isinstance(step, Do):
            fn = self._resolve(step.fn) if isinstance(step.fn, str) else step.fn
            fn(self.context)

    def _arm(self, steps: Sequence[Step], index: int, *, now: bool = True) -> _Barge | None:
        step = steps[index] if index < len(steps) else None
        if not isinstance(step, BargeIn):
            return None
        barge = _Barge(self, step, lambda: self._arm(steps, index + 1, now=False))
        barge.arm(now=now)
        return barge

    def _wait_barge(self, barge: _Barge, index: int) -> None:
        """The line before it was said; wait until the barge-in fired at its point."""
        core = self.core
        what = _point(barge.step)
        deadline = time.monotonic() + self.timeout
        with core.cond:
            while not barge.fired.is_set():
                if core.status != "active":
                    barge.disarm()
                    raise StepFailed(f"step {index + 1}: the call ended before the barge-in "
                                     f'"{barge.step.text}" ({what})')
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    barge.disarm()
                    said = [text for who, text, _ in core.transcript[self.mark:] if who == "bot"]
                    raise StepFailed(
                        f'step {index + 1}: nothing to barge in on {what}: the bot said '
                        f"{said or 'nothing'} within {self.timeout:g} s")
                core.cond.wait(remaining)
        if barge.step.wait and barge.chained is None:
            self._settle(f'the answer to the barge-in "{barge.step.text}"')

    def _hear(self, step: Hear, index: int) -> None:
        if not self._bot_lines():
            self._settle(f'a bot message with "{step.text}"', idle=False)
        said = " / ".join(self._bot_lines())
        if _norm(step.text) not in _norm(said):
            raise StepFailed(f'step {index + 1}: expected to hear "{step.text}", the caller '
                             f'heard "{said}"')
        self.mark = len(self.call.transcript)

    def _silence(self, seconds: float) -> None:
        clock = self.sim.clock
        if clock.virtual:
            clock.advance(seconds)
            clock.settle(self.timeout)
        else:
            threading.Event().wait(seconds)  # real time: the caller is silent for real

    # -- waits --------------------------------------------------------------------------

    def _bot_lines(self) -> list[str]:
        return [text for who, text, _ in self.call.transcript[self.mark:] if who == "bot"]

    def _over(self) -> bool:
        return bool(self.call.status != "active")

    def _settle(self, what: str, *, idle: bool = True) -> None:
        """Wait for a bot line since the last caller action, then for silence; a call
        that ends first (the agent hung up) ends the wait too."""
        core = self.core
        deadline = time.monotonic() + self.timeout
        with core.cond:
            while True:
                bot = any(who == "bot" for who, _, _ in core.transcript[self.mark:])
                if core.status not in ("active", "ringing", "new"):
                    return
                if bot and (not idle or core.speaker.idle):
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StepFailed(f"timed out after {self.timeout:g} s waiting for {what}")
                core.cond.wait(remaining)


def _point(step: BargeIn) -> str:
    if step.before_first_word:
        return "before the first word"
    if step.after_ms is not None:
        return f"after {step.after_ms:g} ms of speech"
    if step.during_tool:
        return "during a tool call"
    return f"after {step.after_words if step.after_words is not None else 2} word(s)"


def _name(step: Step) -> str:
    return type(step).__name__.lower()


def _norm(text: str) -> str:
    return " ".join(text.lower().split())
