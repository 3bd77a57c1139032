"""One simulated call, platform side: its frames, user turns, barge-in, and ending (§9.2-§9.7).

Every method runs with the simulator lock held; waits on `cond` share that lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from voicesync.sim._limits import IdleWatch, limit
from voicesync.sim._llm import ServerTurn
from voicesync.sim._speech import BotMessage, Speaker
from voicesync.sim._util import JsonDict, epoch, epoch_ms, new_id

if TYPE_CHECKING:
    from voicesync.sim._platform import AgentReg, Platform

logger = logging.getLogger(__name__)

TranscriptLine = tuple[str, str, bool]


class CallCore:
    """The platform's view of one call. Statuses: ringing, active, rejected, ended."""

    def __init__(self, platform: Platform, agent: AgentReg, *, call_id: str, from_: str,
                 to: str, direction: str, transport: str, metadata: JsonDict,
                 greeting: str | None = None) -> None:
        self.platform = platform
        self.sim_call: Any = None  # its SimCall wrapper, made on first use by the Simulator
        self.lock = platform.lock
        self.clock = platform.clock
        self.settings = platform.settings
        self.llm = platform.llm
        self.cond = threading.Condition(self.lock)
        self.conn = agent.conn
        self.agent_slug = agent.slug
        self.agent_config: JsonDict = dict(agent.config)
        self.call_id = call_id
        self.from_ = from_
        self.to = to
        self.direction = direction
        self.transport = transport
        self.metadata = metadata
        language = self.agent_config.get("language")
        self.language = language if isinstance(language, str) else "en"
        self.greeting = greeting if greeting is not None else _greeting_for(
            self.agent_config.get("greeting"), self.language)
        self.status = "new"
        self.ended_reason: str | None = None
        self.session_config: JsonDict = {}
        self.turn = 0
        self.user_message_id = ""
        self.user_text = ""
        self.transcript: list[TranscriptLine] = []
        self.reply_mark = 0
        self.history: list[JsonDict] = []
        prompt = self.agent_config.get("prompt")
        if isinstance(prompt, str) and prompt:
            self.history.append({"role": "system", "content": prompt})
        self.vars: dict[str, Any] = {}
        self.skills: set[str] = set()
        self.held = False
        self.muted = False
        self.muted_buffer: list[str] = []
        self.digits = ""
        self.last_sent: dict[str, JsonDict] = {}
        self.greeting_id: str | None = None
        self.server_turn: ServerTurn | None = None
        self.speech_turn: int | None = None  # a turn the caller started speaking, not yet said
        self.speaker = Speaker(self, self.clock, self.lock, lambda: self.settings.words_per_second)
        limits = self.agent_config.get("session_limits")
        self._limits: JsonDict = limits if isinstance(limits, dict) else {}
        self.idle = IdleWatch(self.clock, self.lock, self._limits, self._idle_step)
        self._timers: list[Any] = []
        self.started_mono = 0.0
        # Called under the lock as ("speaking"|"word", message): scenario barge-in triggers.
        self.watchers: list[Callable[[str, BotMessage], None]] = []
        self.started_at = 0.0
        # Phone lines and bridges (`_lines.py`, `_dialing.py`): extra `call.started`
        # fields, the keyed context, the extension dialled, the other end of a bridge.
        self.started_extra: JsonDict = {}
        self.context: JsonDict = {}
        self.extension: str | None = None
        self.peer: CallCore | None = None

    # -- frames -------------------------------------------------------------------------

    def emit(self, event: str, **fields: Any) -> None:
        if self.status in ("ended", "rejected") and event != "call.ended":
            return
        frame: JsonDict = {"event": event, "agent_id": self.agent_slug,
                           "call_id": self.call_id, "session_id": self.call_id}
        frame.update(fields)
        self.last_sent[event] = frame
        if event == "message.confirmed" and fields.get("text"):
            self.history.append({"role": "assistant", "content": fields["text"]})
        self.conn.send(frame)

    def notify(self) -> None:
        self.cond.notify_all()
        self.platform.changed.notify_all()

    # -- lifecycle ----------------------------------------------------------------------

    def ring(self) -> None:
        self.status = "ringing"
        self.emit("call.ringing", **{"from": self.from_, "to": self.to})
        self._timers.append(self.clock.after_sim(self.settings.ring_timeout, self._auto_accept))

    def _auto_accept(self) -> None:
        with self.lock:
            self.accept()

    def accept(self) -> None:
        if self.status == "ringing":
            self.begin()

    def reject(self, reason: str) -> None:
        if self.status != "ringing":
            return
        self.emit("call.rejected", reason=reason)
        self.status = "rejected"
        self.ended_reason = reason
        self._stop_everything()
        self.platform.forget_call(self)
        self.notify()

    def begin(self) -> None:
        """Connect the call: `call.started`, limits, then the greeting (§9.2)."""
        self.status = "active"
        self.started_mono = self.clock.now()
        self.started_at = epoch()
        self.emit("call.started", **{"from": self.from_, "to": self.to},
                  direction=self.direction, transport=self.transport,
                  metadata=self.metadata, language=self.language, **self.started_extra)
        self.idle.start()
        max_duration = limit(self._limits, "max_duration_seconds")
        if max_duration > 0:
            self._timers.append(self.clock.after_sim(max_duration, self._max_duration))
        if self.greeting:
            self.greeting_id = self.speak_server(self.greeting)
        self.notify()

    def end(self, reason: str) -> None:
        if self.status in ("ended", "rejected"):
            return
        was_started = self.status == "active"
        self.status = "ended"
        self.ended_reason = reason
        self._stop_everything()
        duration = self.clock.sim_elapsed(self.started_mono) if was_started else 0.0
        started_at = self.started_at if was_started else epoch()
        self.emit("call.ended", reason=reason, duration_seconds=round(duration, 3),
                  started_at=started_at, ended_at=started_at + duration,
                  messages=list(self.history), direction=self.direction,
                  **{"from": self.from_, "to": self.to})
        self.platform.forget_call(self)
        self.notify()
        peer, self.peer = self.peer, None
        if peer is not None:  # a bridge: the other agent's call ends with it
            peer.peer = None
            peer.end("hangup")

    def _stop_everything(self) -> None:
        self.speaker.stop()
        self.idle.stop()
        for timer in self._timers:
            timer.cancel()
        if self.server_turn is not None:
            self.server_turn.cancel()

    def _max_duration(self) -> None:
        with self.lock:
            if self.status == "active":
                self.emit("session.timeout", reason="max_duration")
                self.end("max_duration")

    def _idle_step(self, kind: str, remaining: float) -> None:
        if self.status != "active":
            return
        if kind == "timeout":
            self.emit("session.timeout", reason="idle_timeout")
            self.end("idle_timeout")
        else:
            self.emit("session.idle_warning", remaining_seconds=remaining,
                      idle_timeout_seconds=self.idle.timeout_seconds)

    # -- speech -------------------------------------------------------------------------

    def speak_server(self, text: str) -> str:
        """Queue a server-generated bot message (greeting, server-LLM reply)."""
        msg = BotMessage(new_id("msg_"), "server", self.user_message_id, text)
        self.speaker.add(msg)
        return msg.message_id

    def on_speech_start(self, msg: BotMessage) -> None:
        self.idle.pause()
        self._watch("speaking", msg)
        self.notify()

    def on_word(self, msg: BotMessage) -> None:
        self._watch("word", msg)
        self.cond.notify_all()

    def _watch(self, what: str, msg: BotMessage) -> None:
        for watcher in list(self.watchers):
            watcher(what, msg)

    def on_speech_end(self, msg: BotMessage) -> None:
        text = msg.spoken_text if msg.interrupted else msg.text.strip()
        self.transcript.append(("bot", text, msg.interrupted))
        if msg.message_id == self.greeting_id:
            self.greeting_id = None
        if self.peer is not None and self.peer.status == "active" and text:
            self.peer.user_turn(text)  # a bridge: what one agent says, the other hears
        if self.status == "active":
            self.idle.resume()
        self.notify()

    def interruptible(self) -> bool:
        for config in (self.session_config, self.agent_config):
            value = config.get("interruption")
            if value is False or (isinstance(value, dict) and value.get("enabled") is False):
                return False
            nested = config.get("config")
            inner = nested.get("interruption") if isinstance(nested, dict) else None
            if isinstance(inner, dict) and inner.get("enabled") is False:
                return False
        return True

    def _stop_bot(self, reason: str, turn_id: int) -> None:
        """§9.5: bot.interrupted -> turn.continued -> message.confirmed(words spoken)."""
        msg = self.speaker.interrupt(reason)
        if msg is None:
            return
        self.speaker.drop_queue()
        self.emit("turn.continued", turn_id=turn_id, timestamp=epoch_ms())
        self.emit("message.confirmed", message_id=msg.message_id, text=msg.spoken_text)

    # -- the scripted caller ------------------------------------------------------------

    def user_turn(self, text: str, *, eager: bool | None = None, duplicate: bool = False,
                  docs_order: bool = False) -> str | None:
        """Emit one user turn (§9.3); returns its user message id, None if not heard."""
        if self.status != "active":
            raise RuntimeError(f"call {self.call_id} is {self.status}")
        if self.held:
            return None
        if self.muted:
            self.muted_buffer.append(text)
            return None
        n = self._speech_started()
        self.speech_turn = None
        self.transcript.append(("user", text, False))
        self.history.append({"role": "user", "content": text})
        self._finish_turn(n, text, eager=eager, duplicate=duplicate, docs_order=docs_order)
        return self.user_message_id

    def start_speech(self) -> bool:
        """The caller starts talking before the words are known (a console keystroke):
        `speech.started`, and a barge-in if the bot is speaking. The next `user_turn` is this
        turn. False (nothing sent) if the call is not active, held, muted or greeting.
        """
        if (self.status != "active" or self.held or self.muted or self.greeting_id is not None
                or self.speech_turn is not None):
            return False
        self.speech_turn = self._speech_started()
        self.notify()
        return True

    def _speech_started(self) -> int:
        """`speech.started` for a new turn (unless one is open), cutting the bot off."""
        if self.speech_turn is None:
            self.turn += 1
            self.emit("speech.started", turn_id=self.turn, confidence=0.9, timestamp=epoch_ms())
        n = self.speech_turn or self.turn
        if self.speaker.playing is not None and self.interruptible():
            self._stop_bot("user_spoke", n)
        return n

    def continue_turn(self, text: str) -> str:
        """§9.5 continuation: the caller keeps talking after `turn.end`, before the reply."""
        if self.status != "active" or self.turn == 0:
            raise RuntimeError(f"call {self.call_id} has no turn to continue")
        n = self.turn
        old_id = self.user_message_id
        full = f"{self.user_text} {text}".strip()
        self.emit("speech.started", turn_id=n, confidence=0.9, timestamp=epoch_ms())
        if self.speaker.playing is not None:
            self._stop_bot("continuation", n)
        else:
            self.emit("turn.continued", turn_id=n, timestamp=epoch_ms())
        self.speaker.drop_queue(only=lambda m: m.in_reply_to == old_id)
        self._replace_last_user(full)
        self._finish_turn(n, full, eager=False)
        return self.user_message_id

    def _replace_last_user(self, full: str) -> None:
        """The whole utterance replaces its first part, after what the bot said meanwhile."""
        for i in range(len(self.transcript) - 1, -1, -1):
            if self.transcript[i][0] == "user":
                del self.transcript[i]
                break
        self.transcript.append(("user", full, False))
        for i in range(len(self.history) - 1, -1, -1):
            if self.history[i].get("role") == "user":
                del self.history[i]
                break
        self.history.append({"role": "user", "content": full})

    def _finish_turn(self, n: int, text: str, *, eager: bool | None = None,
                     duplicate: bool = False, docs_order: bool = False) -> None:
        if self.server_turn is not None:
            self.server_turn.cancel()
        message_id = new_id("", 32)
        words = text.split()
        step = max(1, len(words) // 4)
        for count in [*range(1, len(words), step), len(words)]:
            self.emit("user.speaking", text=" ".join(words[:count]), confidence=0.9, turn_id=n)
        ended = {"turn_id": n, "duration_ms": 300 * max(1, len(words)), "timestamp": epoch_ms()}
        if docs_order:
            self.emit("speech.ended", **ended)
        for _ in range(2 if duplicate else 1):
            self.emit("user.message", message_id=message_id, text=text, confidence=0.95,
                      turn_id=n, language=self.language, lag_ms=0)
        if self.settings.eager_turns if eager is None else eager:
            self.emit("eager.turn", turn_id=n, probability=0.6, latency_ms=120, text=text,
                      message_id=message_id)
        if not docs_order:
            self.emit("speech.ended", **ended)
        self.user_message_id = message_id
        self.user_text = text
        self.reply_mark = len(self.transcript)
        self.emit("turn.end", turn_id=n, probability=0.95, latency_ms=160, text=text,
                  message_id=message_id)
        self.idle.reset()
        if "llm" in self.agent_config and self.agent_config.get("llm"):
            self.server_turn = ServerTurn(self, n, text)
            self.server_turn.start()
        self.notify()

    def press(self, digits: str) -> None:
        for digit in digits:
            self.digits += digit
            self.emit("call.dtmf_received", digit=digit, digits=self.digits)
        self.idle.reset()


def _greeting_for(greeting: Any, language: str) -> str | None:
    if isinstance(greeting, str):
        return greeting or None
    if isinstance(greeting, dict) and greeting:
        choice = greeting.get(language, greeting.get("en", next(iter(greeting.values()))))
        return choice if isinstance(choice, str) and choice else None
    return None
