"""The simulated TTS of one call: a queue of bot messages spoken one at a time, word by word.

Every method runs with the simulator lock held (the clock's callbacks take it), so a
barge-in and the next word can never interleave: once `interrupt` returns, no word or
`bot.finished` of that message is ever emitted.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from voicesync.sim._clock import Clock, Timer

# A sentence ends at ., ! or ? followed by whitespace or by the end of the text so far.
SENTENCE_END = re.compile(r"[.!?](?:\s|$)")

MessageKind = Literal["reply", "stream", "server"]


@dataclass
class BotMessage:
    """One bot utterance: a `bot.reply`, a `bot.reply.stream`, or a server-generated reply."""

    message_id: str
    kind: MessageKind
    in_reply_to: str = ""
    text: str = ""
    closed: bool = True
    add_to_history: bool = False
    spoken: list[str] = field(default_factory=list)
    started: float = 0.0
    interrupted: bool = False

    def ready(self) -> bool:
        """Whether TTS may start: the text is complete, or holds a whole sentence."""
        return self.closed or SENTENCE_END.search(self.text) is not None

    def words(self) -> list[str]:
        """The words that can be spoken now (an open stream's last word may still grow)."""
        words = self.text.split()
        if not self.closed and words and not self.text[-1].isspace():
            words.pop()
        return words

    @property
    def spoken_text(self) -> str:
        return " ".join(self.spoken)


class SpeakerHost(Protocol):
    def emit(self, event: str, **fields: Any) -> None: ...
    def on_speech_start(self, msg: BotMessage) -> None: ...
    def on_word(self, msg: BotMessage) -> None: ...
    def on_speech_end(self, msg: BotMessage) -> None: ...


class StreamSink:
    """What every kind of session does with a streamed bot message (`bot.reply.stream`):
    tokens are appended and the end closes it; a subclass says what follows each."""

    streams: dict[str, BotMessage]

    def chunk(self, message_id: str, token: str) -> bool:
        """Append a streamed token; False if the stream is unknown, ended or discarded."""
        msg = self.streams.get(message_id)
        if msg is None:
            return False
        msg.text += token
        self._chunked(msg, token)
        return True

    def end(self, message_id: str) -> bool:
        msg = self.streams.pop(message_id, None)
        if msg is None:
            return False
        msg.closed = True
        self._ended(msg)
        return True

    def _chunked(self, msg: BotMessage, token: str) -> None:
        raise NotImplementedError

    def _ended(self, msg: BotMessage) -> None:
        raise NotImplementedError


class Speaker(StreamSink):
    """Plays a call's bot messages in arrival order, paced at `words_per_second()`."""

    def __init__(self, host: SpeakerHost, clock: Clock, lock: threading.RLock,
                 words_per_second: Callable[[], float]) -> None:
        self._host = host
        self._clock = clock
        self._lock = lock
        self._wps = words_per_second
        self.queue: deque[BotMessage] = deque()
        self.playing: BotMessage | None = None
        self.streams: dict[str, BotMessage] = {}
        self.dead: set[str] = set()
        self._timer: Timer | None = None
        self._due = 0.0
        self._interval = 0.4
        self._stalled = False

    @property
    def idle(self) -> bool:
        return self.playing is None and not self.queue

    def add(self, msg: BotMessage) -> None:
        self.queue.append(msg)
        if not msg.closed:
            self.streams[msg.message_id] = msg
        self._pump()

    def _chunked(self, msg: BotMessage, token: str) -> None:
        self._resume(msg)

    def _ended(self, msg: BotMessage) -> None:
        self._resume(msg)

    def interrupt(self, reason: str) -> BotMessage | None:
        """Stop the playing message now with `bot.interrupted`; its stream is discarded."""
        msg = self.playing
        if msg is None:
            return None
        self._cancel_timer()
        self.playing = None
        msg.interrupted = True
        self._discard(msg)
        fields: dict[str, Any] = {}
        if msg.spoken:
            fields["last_word"] = msg.spoken[-1]
        self._host.emit("bot.interrupted", message_id=msg.message_id,
                        played_ms=int((self._clock.now() - msg.started) * 1000),
                        words_spoken=len(msg.spoken), reason=reason, **fields)
        self._host.on_speech_end(msg)
        return msg

    def drop_queue(self, notify_reason: str | None = None,
                   only: Callable[[BotMessage], bool] | None = None) -> None:
        """Forget queued (not yet playing) messages, optionally telling the client."""
        kept: deque[BotMessage] = deque()
        for msg in self.queue:
            if only is not None and not only(msg):
                kept.append(msg)
                continue
            self._discard(msg)
            if notify_reason is not None:
                self._host.emit("bot.interrupted", message_id=msg.message_id, played_ms=0,
                                words_spoken=0, reason=notify_reason)
        self.queue = kept

    def cancel(self, message_id: str | None) -> BotMessage | None:
        """`bot.cancel`: stop the playing (or named queued) message, then play on."""
        stopped = None
        if message_id is None or (self.playing and self.playing.message_id == message_id):
            stopped = self.interrupt("cancelled")
        else:
            self.drop_queue("cancelled", only=lambda m: m.message_id == message_id)
        return stopped

    def resume_queue(self) -> None:
        self._pump()

    def stop(self) -> None:
        """The call ended: silence, no frames; a message cut mid-play is recorded as such."""
        self._cancel_timer()
        msg = self.playing
        if msg is not None:
            self._discard(msg)
            self.playing = None
            msg.interrupted = True
            self._host.on_speech_end(msg)
        for msg in self.queue:
            self._discard(msg)
        self.queue.clear()

    def _discard(self, msg: BotMessage) -> None:
        self.streams.pop(msg.message_id, None)
        self.dead.add(msg.message_id)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._stalled = False

    def _resume(self, msg: BotMessage) -> None:
        if msg is self.playing:
            if self._stalled:
                self._stalled = False
                self._due = max(self._due, self._clock.now())
                self._tick()
        else:
            self._pump()

    def _pump(self) -> None:
        while self.playing is None and self.queue:
            head = self.queue[0]
            if not head.ready():
                return
            self.queue.popleft()
            if head.closed and not head.words():
                self.streams.pop(head.message_id, None)
                self._host.emit("bot.finished", message_id=head.message_id, duration_ms=0)
                continue
            self._start(head)

    def _start(self, msg: BotMessage) -> None:
        self.playing = msg
        self._interval = 1.0 / max(self._wps(), 1e-3)
        msg.started = self._due = self._clock.now()
        self._host.emit("bot.speaking", message_id=msg.message_id,
                        text=msg.text if msg.kind == "reply" else "")
        self._host.on_speech_start(msg)
        self._tick()

    def _tick(self) -> None:
        self._timer = None
        msg = self.playing
        if msg is None:
            return
        words = msg.words()
        index = len(msg.spoken)
        if index < len(words):
            word = words[index]
            msg.spoken.append(word)
            offset = index * self._interval
            self._host.emit("bot.word", message_id=msg.message_id, word=word, word_index=index,
                            start_time=round(offset, 3),
                            end_time=round(offset + self._interval, 3))
            self._host.on_word(msg)
            if self.playing is not msg:
                return  # interrupted from on_word (a scripted barge-in): no next word
            self._due += self._interval
            self._timer = self._clock.at(self._due, lambda: self._locked_tick(msg), skippable=True)
        elif msg.closed:
            self._finish(msg)
        else:
            self._stalled = True

    def _locked_tick(self, msg: BotMessage) -> None:
        with self._lock:
            if self.playing is msg and not self._stalled:
                self._tick()

    def _finish(self, msg: BotMessage) -> None:
        self.playing = None
        self.streams.pop(msg.message_id, None)
        self._host.emit("message.confirmed", message_id=msg.message_id, text=msg.text.strip())
        self._host.emit("bot.finished", message_id=msg.message_id,
                        duration_ms=int(len(msg.spoken) * self._interval * 1000))
        self._host.on_speech_end(msg)
        self._pump()
