"""Printing a simulated call as the caller hears it: the narrator thread and where it prints.

The narrator reads the simulator's frame record and tells a `Printer` three things: a
whole line (`line`); the bot line being spoken so far (`speaking`, called again after each
word; the next `line` of the same text finishes it); and, last, that the call ended.
`StreamPrinter` writes to a text stream word by word, as `voicesync.local` and the demo show
a call; the console gives its own printer that keeps the line being spoken apart from the
line being typed.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Protocol, TextIO

if TYPE_CHECKING:
    from voicesync.sim import Frame, SimCall, Simulator

__all__ = ["CALLER_CUT", "Narrator", "Printer", "StreamPrinter"]

CALLER_CUT = " ... [cut off by the caller]"
_MARKS = {"user_spoke": CALLER_CUT, "continuation": CALLER_CUT, "cancelled": " ... [cancelled]"}
_LOCK = threading.Lock()  # one line at a time from concurrent narrators on one stream


class Printer(Protocol):
    """Where a narrated call goes. Called from narrator threads, one call at a time each."""

    def line(self, text: str) -> None:
        """A whole line (without its newline); it also finishes a line being spoken."""

    def speaking(self, text: str) -> None:
        """The bot line spoken so far; each call extends the previous one."""

    def ended(self) -> None:
        """The call's end has been printed: nothing more comes for it."""


class StreamPrinter:
    """Writes to a text stream: the spoken line grows word by word, then ends with a newline."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._open = ""  # the part of an unfinished line already written

    def speaking(self, text: str) -> None:
        with _LOCK:
            self._write_line_start(text)
            self._open = text
            self.out.flush()

    def line(self, text: str) -> None:
        with _LOCK:
            self._write_line_start(text)
            self.out.write("\n")
            self._open = ""
            self.out.flush()

    def ended(self) -> None:
        pass

    def _write_line_start(self, text: str) -> None:
        if self._open and not text.startswith(self._open):
            self.out.write("\n")  # another line came between: this one starts afresh
            self._open = ""
        self.out.write(text[len(self._open):])


class Narrator(threading.Thread):
    """Prints one simulated call from the simulator's frame record, on its own thread.

    Live mode shows each bot word as it is spoken; line mode (concurrent calls) prints
    whole lines, labelled. It stops after the call's `call.ended` (or `call.rejected`).
    A line the caller cut off ends with `CALLER_CUT`; one the call's end cut off, with
    `` ...``, so the call's last line always starts on a line of its own.
    """

    def __init__(self, printer: Printer, sim: Simulator, call_id: str, since: int, *,
                 live: bool, label: str = "", echo_caller: bool = True) -> None:
        super().__init__(name=f"voicesync-local-narrator-{call_id}", daemon=True)
        self._printer, self._sim, self._call_id, self._pos = printer, sim, call_id, since
        self._live = live
        self._prefix = f"[{label}] " if label else ""
        self._person = "caller"
        self._echo = echo_caller  # off when the terminal already shows what was typed
        self._words: list[str] = []
        self._speaking: str | None = None  # the message id being spoken
        self._seen: set[str] = set()
        self._done = threading.Event()
        self.start()

    def run(self) -> None:
        while not self._done.is_set():
            frames = self._sim.frames_since(self._pos)
            if not frames:
                with contextlib.suppress(TimeoutError):
                    self._sim.wait_frame(since=self._pos, timeout=0.25)
                continue
            self._pos += len(frames)
            for frame in frames:
                if frame.direction == "out" and frame.call_id == self._call_id:
                    self._show(frame)

    def finish(self, call: SimCall, timeout: float) -> None:
        """Hang up if the call is still on, then print up to its end (or give up)."""
        if call.status in ("active", "ringing"):
            call.hangup()
        self.join(min(timeout, 5.0))  # call.ended is recorded at once unless the socket died
        self._done.set()

    @property
    def ended(self) -> bool:
        """True once the call's end has been printed."""
        return self._done.is_set()

    def _bot_line(self) -> str:
        return f"{self._prefix}bot:    {' '.join(self._words)}"

    def _end_speech(self, mark: str) -> None:
        if self._speaking is not None:
            self._speaking = None
            self._printer.line(self._bot_line() + mark)

    def _show(self, frame: Frame) -> None:
        event = frame.event
        line = self._printer.line
        if event == "user.message":
            if self._echo and frame.get("message_id") not in self._seen:
                self._seen.add(str(frame.get("message_id")))
                line(f"{self._prefix}{self._person}: {frame.get('text', '')}")
        elif event == "call.dtmf_received":
            line(f"{self._prefix}{self._person}: [pressed {frame.get('digit', '')}]")
        elif event == "call.ringing":
            line(f"{self._prefix}[{frame.get('from', '')} is calling {frame.get('to', '')}]")
        elif event == "call.started" and frame.get("direction") == "outbound":
            self._person = "callee"
        elif event == "bot.speaking":
            self._end_speech(" ...")  # never seen: the platform ends one message first
            self._words = []
            self._speaking = str(frame.get("message_id"))
            if self._live:
                self._printer.speaking(self._bot_line())
        elif event == "bot.word" and frame.get("message_id") == self._speaking:
            self._words.append(str(frame.get("word", "")))
            if self._live:
                self._printer.speaking(self._bot_line())
        elif event in ("bot.finished", "bot.interrupted"):
            if frame.get("message_id") == self._speaking:  # not a dropped queued message
                cut = event == "bot.interrupted"
                self._end_speech(_MARKS.get(str(frame.get("reason")), CALLER_CUT) if cut else "")
        elif event in ("call.ended", "call.rejected"):
            self._end_speech(" ...")  # hung up mid-sentence
            line(f"{self._prefix}[call {event.split('.')[1]}: {frame.get('reason', '')}]")
            self._done.set()
            self._printer.ended()
