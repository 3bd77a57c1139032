"""`SimCall`: one simulated call as the scripted caller and a test drive and observe it.

Every method may be called from any thread. Waits block at most `timeout` seconds and
raise `TimeoutError` when it passes; nothing here sleeps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from voicesync.sim._call import CallCore, TranscriptLine
from voicesync.sim._speech import BotMessage
from voicesync.sim._util import JsonDict

T = TypeVar("T")


class SimCall:
    """A call on the simulator: say things, press keys, hang up, and wait for the bot."""

    def __init__(self, core: CallCore) -> None:
        self._core = core

    def __repr__(self) -> str:
        return f"<SimCall {self.call_id} {self.agent_id} {self.status}>"

    # -- what it is -----------------------------------------------------------------------

    @property
    def call_id(self) -> str:
        return self._core.call_id

    @property
    def agent_id(self) -> str:
        """The agent's slug."""
        return self._core.agent_slug

    @property
    def from_(self) -> str:
        return self._core.from_

    @property
    def to(self) -> str:
        return self._core.to

    @property
    def direction(self) -> str:
        return self._core.direction

    @property
    def transport(self) -> str:
        return self._core.transport

    @property
    def metadata(self) -> JsonDict:
        return dict(self._core.metadata)

    @property
    def conn_id(self) -> int:
        """The id of the connection that owns the call (for `Simulator.send`/`drop`)."""
        return self._core.conn.id

    # -- what happened --------------------------------------------------------------------

    @property
    def status(self) -> str:
        """"ringing", "active", "rejected" or "ended"."""
        with self._core.lock:
            return self._core.status

    @property
    def ended_reason(self) -> str | None:
        with self._core.lock:
            return self._core.ended_reason

    @property
    def transcript(self) -> list[TranscriptLine]:
        """[(speaker "user"|"bot", text, interrupted?), ...]; a cut bot line holds what was said."""
        with self._core.lock:
            return list(self._core.transcript)

    @property
    def history(self) -> list[JsonDict]:
        """The simulated LLM history (what `history.get` answers and `call.ended` carries)."""
        with self._core.lock:
            return [dict(m) for m in self._core.history]

    @property
    def user_message_id(self) -> str:
        """The current user message id: what a reply must quote as `in_reply_to`."""
        with self._core.lock:
            return self._core.user_message_id

    @property
    def turn(self) -> int:
        with self._core.lock:
            return self._core.turn

    @property
    def speaking(self) -> bool:
        with self._core.lock:
            return self._core.speaker.playing is not None

    @property
    def held(self) -> bool:
        with self._core.lock:
            return self._core.held

    @property
    def muted(self) -> bool:
        with self._core.lock:
            return self._core.muted

    @property
    def vars(self) -> JsonDict:
        with self._core.lock:
            return dict(self._core.vars)

    @property
    def context(self) -> JsonDict:
        """Keyed context (`set_context`, and a route's `context`), kept across a route."""
        with self._core.lock:
            return dict(self._core.context)

    # -- the caller -----------------------------------------------------------------------

    def say(self, text: str, *, eager: bool | None = None, duplicate: bool = False,
            docs_order: bool = False, timeout: float = 10.0) -> str | None:
        """One user turn (§9.3); returns its user message id (None if held or muted).

        Waits for a playing greeting to end first (the greeting lock). If the bot is
        speaking anything else, this is a barge-in (§9.5) unless interruption is off.
        `duplicate` sends `user.message` twice; `docs_order` sends `speech.ended` first.
        """
        core = self._core
        with core.cond:
            self._wait(lambda: core.greeting_id is None or core.status != "active",
                       timeout, "the greeting to end")
            return core.user_turn(text, eager=eager, duplicate=duplicate, docs_order=docs_order)

    def barge_in(self, text: str, *, after_words: int = 1, timeout: float = 10.0) -> str | None:
        """Talk over the bot: wait until it has spoken `after_words` words, then `say`.

        Raises:
            TimeoutError: the bot did not speak within `timeout`.
        """
        core = self._core
        with core.cond:
            self._wait(lambda: self._spoken_words() >= after_words, timeout,
                       f"the bot to speak {after_words} word(s)")
            return core.user_turn(text)

    def start_speaking(self) -> bool:
        """The caller starts talking, words not known yet: `speech.started`, and a barge-in
        if the bot is speaking. The next `say` completes this turn. Returns False (and sends
        nothing) while the greeting plays, or if the call is not active, held or muted.
        """
        with self._core.lock:
            return self._core.start_speech()

    def continue_turn(self, text: str) -> str:
        """The caller keeps talking after `turn.end` (§9.5 continuation); returns the new id."""
        with self._core.lock:
            return self._core.continue_turn(text)

    def press(self, digits: str) -> str:
        """Keypad presses: one `call.dtmf_received` per digit; returns every digit so far."""
        with self._core.lock:
            self._core.press(digits)
            return self._core.digits

    def hangup(self, reason: str = "hangup") -> None:
        """The caller hangs up: `call.ended {reason}`."""
        with self._core.lock:
            self._core.end(reason)

    # -- waits ----------------------------------------------------------------------------

    def wait_reply(self, timeout: float = 10.0) -> str:
        """The first bot message spoken after the latest user turn, once finished or cut."""
        core = self._core

        def reply() -> str | None:
            for speaker, text, _ in core.transcript[core.reply_mark:]:
                if speaker == "bot":
                    return text
            if core.status not in ("active", "ringing", "new"):
                raise RuntimeError(f"call {core.call_id} {core.status} before the bot replied")
            return None

        with core.cond:
            return self._wait(reply, timeout, "a reply")

    def wait_speaking(self, timeout: float = 10.0, *, words: int = 1) -> str:
        """Wait until the bot is speaking and has said `words` words; returns the message id."""
        core = self._core

        def playing() -> str | None:
            msg = core.speaker.playing
            return msg.message_id if msg is not None and len(msg.spoken) >= words else None

        with core.cond:
            return self._wait(playing, timeout, "the bot to speak")

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until nothing is playing or queued."""
        with self._core.cond:
            self._wait(lambda: self._core.speaker.idle, timeout, "the bot to be silent")

    def wait_started(self, timeout: float = 10.0) -> bool:
        """Wait for a ringing call to connect: True once started, False if rejected or ended."""
        core = self._core
        with core.cond:
            self._wait(lambda: core.status not in ("ringing", "new"), timeout, "call.started")
            return core.started_mono > 0 and core.status == "active"

    def wait_ended(self, timeout: float = 10.0) -> str:
        """Wait for the call to end; returns the reason."""
        core = self._core
        with core.cond:
            return self._wait(lambda: core.ended_reason if core.status in ("ended", "rejected")
                              else None, timeout, "the call to end")

    # -- injection ------------------------------------------------------------------------

    def send_event(self, event: str, **fields: Any) -> None:
        """Send any event on this call, with `agent_id`, `call_id`, `session_id` filled in."""
        with self._core.lock:
            self._core.emit(event, **fields)

    def duplicate(self, event: str) -> bool:
        """Send the last `event` frame of this call again, as is (e.g. "message.confirmed")."""
        with self._core.lock:
            frame = self._core.last_sent.get(event)
            if frame is not None:
                self._core.conn.send(frame)
            return frame is not None

    def arm_barge_in(self, text: str, *, after_words: int = 1,
                     timeout: float = 10.0) -> Callable[[], bool]:
        """Barge in on the bot's next (or current) message the moment its `after_words`-th
        word is spoken; returns `wait()`: True once it did, False (and disarmed) if it did
        not within `timeout` seconds of being called.

        Unlike `barge_in`, nothing waits here: the simulator says `text` under its lock as
        that word goes out, so the point is exact at any pace (also on the virtual clock).
        Arm it before the line whose answer it should cut.
        """
        core = self._core
        fired = threading.Event()

        def watch(what: str, msg: BotMessage) -> None:
            if len(msg.spoken) >= after_words and not fired.is_set():
                core.watchers.remove(watch)
                if core.status == "active":
                    core.user_turn(text)
                fired.set()

        def wait() -> bool:
            if fired.wait(timeout):
                return True
            with core.lock:
                if watch in core.watchers:
                    core.watchers.remove(watch)
                return fired.is_set()

        with core.lock:
            core.watchers.append(watch)
            if core.speaker.playing is not None:
                watch("word", core.speaker.playing)
        return wait

    def _spoken_words(self) -> int:
        msg = self._core.speaker.playing
        if self._core.status != "active":
            raise RuntimeError(f"call {self.call_id} is {self._core.status}")
        return len(msg.spoken) if msg is not None else 0

    def _wait(self, pred: Callable[[], T | None], timeout: float, what: str) -> T:
        deadline = time.monotonic() + timeout
        while True:
            result = pred()
            if result is not None and result is not False:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout:.3g} s waiting for {what} "
                                   f"on call {self.call_id}")
            self._core.cond.wait(remaining)
