"""What the reader applies to a `Call`: each method takes one frame kind and changes the
call's own state (turn tracking, bot speech, dedupe, its history, its says and streams).

Reader thread only (docs/protocol.md §6, §9.5): the dispatcher finds the call and calls
one of these before any handler sees a later event; it never writes the call's fields.
`CallState` is mixed into `Call`, which creates the fields in its constructor.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from voicesync import _codec
from voicesync.events import Turn

if TYPE_CHECKING:
    from voicesync._handles import SayHandle
    from voicesync.history import History
    from voicesync.reply import ReplyStream

Frame = Mapping[str, Any]


class CallState:
    """The reader's side of `Call`; mixed into it."""

    from_: str
    history: History
    _lock: threading.Lock
    _ended: threading.Event
    _reason: str | None
    _stream_cut: str
    _duration: float | None
    _started_at: float | None
    _ended_at: float | None
    _language: str
    _messages: list[dict[str, Any]]
    _streams: set[ReplyStream]
    _says: dict[str, SayHandle]
    _skills: set[str]
    _bot_message: str
    _bot_words: list[str]
    # Turn tracking (§6.1)
    _last_message_id: str | None
    _turn_text: str
    _turn_confidence: float
    _turn_language: str | None
    _user_turn: int | None  # turn_id of the newest user.message
    _continued_turn: int | None  # a continuation of that turn is under way
    _seen: set[tuple[str, str]]

    def _first(self, event: str, key: str) -> bool:
        """Dedupe (§1.8): True the first time (event, key) is seen on this call."""
        if not key:
            return True
        if (event, key) in self._seen:
            return False
        self._seen.add((event, key))
        return True

    # ------------------------------------------------------------------ user turns

    def _user_message(self, frame: Frame) -> bool:
        """`user.message`; False for a repeat (nothing to hand to handlers)."""
        message_id = _codec.text_field(frame, "message_id")
        if not self._first("user.message", message_id):
            return False
        text = _codec.text_field(frame, "text")
        language = frame.get("language")
        self._last_message_id, self._turn_text = message_id, text
        self._turn_confidence = _codec.number_field(frame, "confidence") or 0.0
        self._turn_language = language if isinstance(language, str) else None
        # After turn.continued{n}, the next user.message of turn n is the whole utterance
        # (a new message id): it supersedes the fragment recorded before (§9.5).
        turn_id = _codec.int_field(frame, "turn_id")
        supersedes = turn_id is not None and turn_id == self._continued_turn
        self._continued_turn, self._user_turn = None, turn_id
        self._push_message("user", text, supersedes=supersedes)
        self.history.user_message(message_id, text, supersedes=supersedes)
        return True

    def _session_message(self, message_id: str, text: str) -> int:
        """A chat or WhatsApp message: a whole turn of its own; returns its turn id."""
        turn_id = (self._user_turn or 0) + 1
        self._user_turn, self._last_message_id, self._turn_text = turn_id, message_id, text
        self._turn_confidence, self._turn_language = 1.0, None
        self._push_message("user", text)
        self.history.user_message(message_id, text)
        return turn_id

    def _session_response(self, message_id: str, text: str) -> None:
        """A chat or WhatsApp answer: heard whole the moment it is sent."""
        self._push_message("assistant", text)
        self.history.bot_speaking(message_id, text)
        self.history.bot_confirmed(message_id, text)
        self.history.bot_finished(message_id)
        self._settle_says(message_id, False)

    def _eager_turn(self, frame: Frame) -> Turn:
        message_id, text = _codec.text_field(frame, "message_id"), _codec.text_field(frame, "text")
        self._last_message_id, self._turn_text = message_id, text
        self._turn_confidence, self._turn_language = 0.0, None
        return _codec.turn(frame, message_id, text, 0.0, None)

    def _turn_end(self, frame: Frame) -> Turn:
        """`turn.end`: fields it leaves out come from the turn's `user.message`."""
        message_id = _codec.text_field(frame, "message_id") or self._last_message_id or ""
        text = _codec.text_field(frame, "text") or self._turn_text
        self._last_message_id, self._turn_text = message_id, text
        return _codec.turn(frame, message_id, text, self._turn_confidence, self._turn_language)

    def _turn_continued(self, frame: Frame) -> None:
        # The same turn as the last user message: a continuation. A barge-in's
        # turn.continued names the new turn instead.
        turn_id = _codec.int_field(frame, "turn_id")
        self._continued_turn = turn_id if turn_id == self._user_turn else None
        self._abort_streams("turn.continued")
        # The platform drops its playback queue on a barge-in or continuation
        # (docs/protocol.md §9.5) without a frame per queued message: settle them here.
        self._settle_says("", True)

    # ------------------------------------------------------------------ bot speech

    def _bot_speaking(self, frame: Frame) -> None:
        message_id = _codec.text_field(frame, "message_id")
        with self._lock:
            self._bot_message, self._bot_words = message_id, []
        self.history.bot_speaking(message_id, _codec.text_field(frame, "text"))

    def _bot_word(self, frame: Frame) -> None:
        message_id, word = _codec.text_field(frame, "message_id"), _codec.text_field(frame, "word")
        with self._lock:
            if message_id == self._bot_message:
                self._bot_words.append(word)
        self.history.bot_word(message_id, word, _codec.int_field(frame, "word_index"))

    def _bot_finished(self, frame: Frame) -> bool:
        """`bot.finished`; False for a repeat."""
        message_id = _codec.text_field(frame, "message_id")
        if not self._first("bot.finished", message_id):
            return False
        self._bot_done()
        self._settle_says(message_id, False)
        self.history.bot_finished(message_id)
        return True

    def _bot_interrupted(self, frame: Frame) -> None:
        message_id = _codec.text_field(frame, "message_id")
        # docs/protocol.md (the stream rules), applied before any handler runs: the app's own
        # cancel/clear stops only the message it names ("say a filler, then stream the
        # answer" must work); the caller's barge-in aborts every stream of the call.
        cancelled = _codec.text_field(frame, "reason") == "cancelled"
        if cancelled:
            if message_id:
                self._abort_streams("cancelled", message_id)
        else:
            self._abort_streams("bot.interrupted")
        self._bot_done()
        self._settle_says(message_id, True)
        self.history.bot_interrupted(
            message_id, words_spoken=_codec.int_field(frame, "words_spoken"),
            by_caller=not cancelled)

    def _reply_rejected(self, frame: Frame) -> None:
        """`reply.rejected`: that message will never be spoken. Aborted here, on the
        reader, so a model loop writing to it stops within milliseconds."""
        message_id = _codec.text_field(frame, "message_id")
        self._abort_streams("rejected", message_id)
        with self._lock:
            handle = self._says.pop(message_id, None)
        if handle is not None:
            handle._settle(True, rejected=True)

    def _message_confirmed(self, frame: Frame) -> bool:
        """`message.confirmed`; False for a repeat."""
        message_id = _codec.text_field(frame, "message_id")
        if not self._first("message.confirmed", message_id):
            return False
        text = _codec.text_field(frame, "text")
        if text:
            self._push_message("assistant", text)
        self.history.bot_confirmed(message_id, text)
        return True

    # ------------------------------------------------------------------ other state

    def _updated(self, frame: Frame) -> None:
        language = _codec.text_field(frame, "language")
        if language:
            with self._lock:
                self._language = language

    def _skill(self, frame: Frame) -> None:
        skill = _codec.text_field(frame, "skill")
        with self._lock:
            if frame.get("event") == "skill.loaded":
                self._skills.add(skill)
            else:
                self._skills.discard(skill)

    def _end(self, reason: str, frame: Frame | None = None, *, cut: str = "call.ended") -> bool:
        """Mark the call ended; abort its streams (reason `cut`); settle its says.

        True the first time."""
        with self._lock:
            if self._ended.is_set():
                return False
            self._reason = reason
            if frame is not None:
                self._duration = _codec.number_field(frame, "duration_seconds")
                self._started_at = _codec.number_field(frame, "started_at") or self._started_at
                self._ended_at = _codec.number_field(frame, "ended_at")
                messages = frame.get("messages")
                if isinstance(messages, list) and messages:
                    self._messages = [dict(m) for m in messages if isinstance(m, Mapping)]
            self._stream_cut = cut
            # Final before wait_ended() returns: a reply still playing is marked cut off.
            self.history.close(reason=reason, contact=self.from_)
            self._ended.set()
        self._abort_streams(self._stream_cut)
        self._settle_says("", True)
        return True

    # ------------------------------------------------------------------ helpers

    def _abort_streams(self, reason: str, message_id: str | None = None) -> None:
        """Abort every active stream, or only the one sending `message_id`."""
        with self._lock:
            streams = [s for s in self._streams
                       if message_id is None or s.message_id == message_id]
        for stream in streams:
            stream.abort(reason)

    def _settle_says(self, message_id: str, interrupted: bool) -> None:
        with self._lock:
            if message_id:
                handles = [h for h in (self._says.pop(message_id, None),) if h is not None]
            else:
                handles, self._says = list(self._says.values()), {}
        for handle in handles:
            handle._settle(interrupted)

    def _bot_done(self) -> None:
        with self._lock:
            self._bot_message, self._bot_words = "", []

    def _push_message(self, role: str, content: str, *, supersedes: bool = False) -> None:
        with self._lock:
            if supersedes:  # a continuation: the whole utterance replaces its first part
                for i in range(len(self._messages) - 1, -1, -1):
                    if self._messages[i].get("role") == role:
                        del self._messages[i]
                        break
            self._messages.append({"role": role, "content": content})
