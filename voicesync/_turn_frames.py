"""Caller turns and bot speech, applied on the reader thread (docs/protocol.md §6, §9.5).

A barge-in or continuation aborts the call's streams and settles its pending says
before any handler sees a later event; the call applies each frame to its own state
and history (`_call_state.py`), and handlers are queued after it.
"""

from __future__ import annotations

from voicesync._routing import Frame, Routing


class TurnFrames(Routing):
    """`user.message`, `eager.turn`, `turn.*`, `bot.*`, `reply.rejected`,
    `message.confirmed`: the part of `Dispatcher` that follows the conversation."""

    # ------------------------------------------------------------------ user turns

    def _user_message(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is not None and call._user_message(frame):
            self._emit(call, "user.message", frame, received_at)

    def _eager_turn(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is not None:
            self._emit(call, "eager.turn", frame, received_at, call._eager_turn(frame))

    def _turn_end(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is not None:
            self._emit(call, "turn.end", frame, received_at, call._turn_end(frame))

    def _turn_continued(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is not None:
            call._turn_continued(frame)
            self._emit(call, "turn.continued", frame, received_at)

    # ------------------------------------------------------------------ bot speech

    def _bot_speaking(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is not None:
            call._bot_speaking(frame)
            self._emit(call, "bot.speaking", frame, received_at)

    def _bot_word(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is not None:
            call._bot_word(frame)
            self._emit(call, "bot.word", frame, received_at)

    def _bot_finished(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is not None and call._bot_finished(frame):
            self._emit(call, "bot.finished", frame, received_at)

    def _bot_interrupted(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is not None:
            call._bot_interrupted(frame)
            self._emit(call, "bot.interrupted", frame, received_at)

    def _reply_rejected(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is not None:
            call._reply_rejected(frame)
            self._emit(call, "reply.rejected", frame, received_at)

    def _message_confirmed(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is not None and call._message_confirmed(frame):
            self._emit(call, "message.confirmed", frame, received_at)
