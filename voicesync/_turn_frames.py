"""Caller turns and bot speech, applied on the reader thread (docs/protocol.md §6, §9.5).

A barge-in or continuation aborts the call's streams and settles its pending says here,
before any handler sees a later event; the call's history is fed from the same frames.
"""

from __future__ import annotations

from voicesync import _codec
from voicesync._routing import Frame, Routing


class TurnFrames(Routing):
    """`user.message`, `eager.turn`, `turn.*`, `bot.*`, `reply.rejected`,
    `message.confirmed`: the part of `Dispatcher` that follows the conversation."""

    # ------------------------------------------------------------------ user turns

    def _user_message(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        message_id = _codec.text_field(frame, "message_id")
        if call is None or not call._first("user.message", message_id):
            return
        text = _codec.text_field(frame, "text")
        language = frame.get("language")
        call._last_message_id = message_id
        call._turn_text = text
        call._turn_confidence = _codec.number_field(frame, "confidence") or 0.0
        call._turn_language = language if isinstance(language, str) else None
        # After turn.continued{n}, the next user.message of turn n is the whole utterance
        # (a new message id): it supersedes the fragment recorded before (§9.5).
        turn_id = _codec.int_field(frame, "turn_id")
        supersedes = turn_id is not None and turn_id == call._continued_turn
        call._continued_turn, call._user_turn = None, turn_id
        call._push_message("user", text, supersedes=supersedes)
        call.history.user_message(message_id, text, supersedes=supersedes)
        self._emit(call, "user.message", frame, received_at)

    def _eager_turn(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is None:
            return
        message_id, text = _codec.text_field(frame, "message_id"), _codec.text_field(frame, "text")
        call._last_message_id, call._turn_text = message_id, text
        call._turn_confidence, call._turn_language = 0.0, None
        turn = _codec.turn(frame, message_id, text, 0.0, None)
        self._emit(call, "eager.turn", frame, received_at, turn)

    def _turn_end(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is None:
            return
        message_id = _codec.text_field(frame, "message_id") or call._last_message_id or ""
        text = _codec.text_field(frame, "text") or call._turn_text
        call._last_message_id, call._turn_text = message_id, text
        turn = _codec.turn(frame, message_id, text, call._turn_confidence, call._turn_language)
        self._emit(call, "turn.end", frame, received_at, turn)

    def _turn_continued(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is not None:
            # The same turn as the last user message: a continuation. A barge-in's
            # turn.continued names the new turn instead.
            turn_id = _codec.int_field(frame, "turn_id")
            call._continued_turn = turn_id if turn_id == call._user_turn else None
            call._abort_streams("turn.continued")
            # The platform drops its playback queue on a barge-in or continuation
            # (docs/protocol.md §9.5) without a frame per queued message: settle them here.
            call._settle_says("", True)
            self._emit(call, "turn.continued", frame, received_at)

    # ------------------------------------------------------------------ bot speech

    def _bot_speaking(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is not None:
            message_id = _codec.text_field(frame, "message_id")
            call._bot_speaking(message_id)
            call.history.bot_speaking(message_id, _codec.text_field(frame, "text"))
            self._emit(call, "bot.speaking", frame, received_at)

    def _bot_word(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is not None:
            message_id, word = _codec.text_field(frame, "message_id"), _codec.text_field(
                frame, "word")
            call._bot_word(message_id, word)
            call.history.bot_word(message_id, word, _codec.int_field(frame, "word_index"))
            self._emit(call, "bot.word", frame, received_at)

    def _bot_finished(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        message_id = _codec.text_field(frame, "message_id")
        if call is None or not call._first("bot.finished", message_id):
            return
        call._bot_done()
        call._settle_says(message_id, False)
        call.history.bot_finished(message_id)
        self._emit(call, "bot.finished", frame, received_at)

    def _bot_interrupted(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is None:
            return
        message_id = _codec.text_field(frame, "message_id")
        # docs/protocol.md (the stream rules), applied before any handler runs: the app's own
        # cancel/clear stops only the message it names ("say a filler, then stream the
        # answer" must work); the caller's barge-in aborts every stream of the call.
        cancelled = _codec.text_field(frame, "reason") == "cancelled"
        if cancelled:
            if message_id:
                call._abort_streams("cancelled", message_id)
        else:
            call._abort_streams("bot.interrupted")
        call._bot_done()
        call._settle_says(message_id, True)
        call.history.bot_interrupted(
            message_id, words_spoken=_codec.int_field(frame, "words_spoken"),
            by_caller=not cancelled)
        self._emit(call, "bot.interrupted", frame, received_at)

    def _reply_rejected(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is None:
            return
        # Aborted here, on the reader, so a model loop writing to it stops within
        # milliseconds and the next turn's handler does not queue behind it.
        call._rejected(_codec.text_field(frame, "message_id"))
        self._emit(call, "reply.rejected", frame, received_at)

    def _message_confirmed(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        message_id = _codec.text_field(frame, "message_id")
        if call is None or not call._first("message.confirmed", message_id):
            return
        text = _codec.text_field(frame, "text")
        if text:
            call._push_message("assistant", text)
        call.history.bot_confirmed(message_id, text)
        self._emit(call, "message.confirmed", frame, received_at)
