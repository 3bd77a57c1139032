"""`Audio.transcribe_stream`: live transcription of audio written as it is captured, over
the voice API's own WebSocket (``/v1/audio/transcriptions/stream``).

Raw PCM goes up as binary frames; ``partial`` (the current guess), ``final`` (a committed
segment) and one ``done`` frame (the billing) come down. The key travels in the upgrade's
``Authorization`` header, never in the URL. Opening waits for the server's ``ready``, so
the first write never races the handshake; then a ``voicesync-stt-reader`` thread reads
while any thread writes. The socket is a transport port (`_port.Port`), like the agent
connection's: no redirects, the deadline, bounded sends, a shutdown that wakes the reader.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

from typing_extensions import Self

from voicesync._codec import number_field, text_field
from voicesync._port import StreamPort, UpgradeRefusedError
from voicesync._rest import rows
from voicesync._transport import Transport
from voicesync.errors import (
    AuthenticationError,
    ConnectError,
    ConnectionClosedError,
    NotFoundError,
    ProtocolError,
    RestError,
    UpgradeRequiredError,
    VoiceSyncError,
)

STREAM_PATH = "/v1/audio/transcriptions/stream"
MAX_FRAME_BYTES = 1 << 20  # a transcript frame over this closes the stream (1009)
Encoding = Literal["linear16", "mulaw"]


@dataclass(frozen=True)
class TranscriptWord:
    word: str
    start: float
    end: float
    speaker: str | None = None


@dataclass(frozen=True)
class PartialTranscript:
    """The recogniser's current guess for the utterance in progress; the next replaces it."""

    text: str


@dataclass(frozen=True)
class FinalTranscript:
    """A committed segment (seconds from the start of the stream)."""

    text: str
    start: float | None = None
    end: float | None = None
    language: str | None = None
    speaker: str | None = None
    words: tuple[TranscriptWord, ...] = ()


@dataclass(frozen=True)
class TranscriptionDone:
    """The stream's billing, sent once after `TranscriptionStream.end`."""

    audio_seconds: float
    billed_minutes: float


Item = PartialTranscript | FinalTranscript


def open_stream(audio_url: str, api_key: str, params: Mapping[str, str],
                timeout: float) -> TranscriptionStream:
    """Open the socket and wait for ``ready``, both within `timeout` s; refusals are typed
    like REST ones."""
    base = audio_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    url = f"{base}{STREAM_PATH}?{urlencode(dict(params))}"
    deadline = time.monotonic() + timeout
    # The key goes in the upgrade's header, to this host only (redirects are refused).
    port = Transport(max_frame_bytes=MAX_FRAME_BYTES, ssl_context=None,
                     headers=[f"Authorization: Bearer {api_key}"])
    try:
        port.open(url, timeout)
    except AuthenticationError:  # 401 or 403
        raise AuthenticationError(f"{base}{STREAM_PATH} refused the API key (HTTP 401/403)",
                                  url=base) from None
    except UpgradeRefusedError as exc:
        status = exc.status
        message = f"{base}{STREAM_PATH} refused the transcription socket (HTTP {status})"
        if status < 400:
            raise ConnectError(f"{base}{STREAM_PATH} answered with a redirect (HTTP {status}); "
                               "the API key is not sent on: use the final address",
                               url=base) from None
        kind = {402: UpgradeRequiredError, 404: NotFoundError}.get(status, RestError)
        raise kind(message, status=status) from None
    try:
        port.start()  # nothing is written before `ready` is read (see Transport.greet)
        port.set_timeout(max(0.001, deadline - time.monotonic()))
        ready = _frame(port.recv())
        if ready.get("type") == "error":
            raise _refusal(ready)
        if ready.get("type") != "ready":
            raise RestError(f"the transcription socket began with {ready.get('type')!r}, not "
                            "'ready'", status=200)
        port.set_timeout(None)  # the reader blocks; close() shuts the socket to end it
    except BaseException as exc:
        port.close()
        port.release()
        if isinstance(exc, ConnectionClosedError):
            raise ConnectError(f"{base}{STREAM_PATH} closed before 'ready' ({exc.reason})",
                               url=base) from None
        raise
    return TranscriptionStream(port, ready)


class TranscriptionStream:
    """A live transcription. `write`, `finalize` and `end` from any thread; iterate from
    one thread (the reader never waits for it: items queue up). A context manager.

    Iterating yields `PartialTranscript` and `FinalTranscript` items until the server's
    ``done``, and raises the stream's error if it failed.
    """

    def __init__(self, port: StreamPort, ready: Mapping[str, Any]) -> None:
        self._port = port
        self.request_id = text_field(ready, "request_id")
        self.model = text_field(ready, "model")
        self.sample_rate = int(number_field(ready, "sample_rate") or 16000)
        self._items: queue.Queue[Item | None] = queue.Queue()  # None: nothing more comes
        self._finished = threading.Event()
        self._done: TranscriptionDone | None = None
        self._error: VoiceSyncError | None = None
        self._closing = False
        self._reader = threading.Thread(target=self._read, name="voicesync-stt-reader",
                                        daemon=True)
        self._reader.start()

    def write(self, chunk: bytes) -> None:
        """Send audio in the stream's encoding and sample rate (16-bit mono PCM by default)."""
        self._send(bytes(chunk))

    def finalize(self) -> None:
        """Ask the server to commit what it heard so far (a `FinalTranscript` follows)."""
        self._send(json.dumps({"type": "finalize"}))

    def end(self, timeout: float = 10.0) -> TranscriptionDone:
        """No more audio: the server commits the rest and reports the billing. Blocks up to
        `timeout` s; then the socket is closed. Raises the stream's error, if any."""
        if not self._finished.is_set():
            with contextlib.suppress(VoiceSyncError):
                self._send(json.dumps({"type": "stop"}))
        finished = self._finished.wait(timeout)
        self.close()
        if self._done is not None:
            return self._done
        raise self._error or RestError(
            "the transcription stream ended before its 'done'" if finished else
            f"no 'done' within {timeout:g} s after the end of the audio", status=200)

    def close(self) -> None:
        """Drop the socket now, without waiting for ``done``. Idempotent; any thread."""
        self._closing = True
        # The port's close() shuts the socket down after its close frame, which wakes the
        # reader blocked in recv(); the reader frees the socket itself on its way out.
        self._port.close()
        if threading.current_thread() is not self._reader:
            self._reader.join(2.0)

    def __iter__(self) -> Generator[Item, None, None]:
        while (item := self._items.get()) is not None:
            yield item
        self._items.put(None)  # a second loop ends at once too
        if self._error is not None:
            raise self._error

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _send(self, data: bytes | str) -> None:
        if self._finished.is_set():
            raise self._error or RestError("the transcription stream has ended", status=200)
        try:
            sent = (self._port.send_binary(data) if isinstance(data, bytes)
                    else self._port.send(data))
        except ConnectionClosedError:
            raise ConnectError("the transcription socket closed", url=None) from None
        if not sent:  # only a thread marked never_wait (voicesync's own) is refused
            raise ConnectError("the transcription socket is not taking audio this fast",
                               url=None)

    def _read(self) -> None:
        try:
            while not self._finished.is_set():
                try:
                    frame = _frame(self._port.recv())
                except ProtocolError:  # a text frame that is not UTF-8: skipped
                    continue
                kind = frame.get("type")
                if kind == "partial":
                    self._items.put(PartialTranscript(text_field(frame, "text")))
                elif kind == "final":
                    self._items.put(_final(frame))
                elif kind == "done":
                    self._done = TranscriptionDone(number_field(frame, "audio_seconds") or 0.0,
                                                   number_field(frame, "billed_minutes") or 0.0)
                    self._finished.set()
                elif kind == "error":
                    self._error = _refusal(frame)
                    self._finished.set()
        except Exception as exc:  # the socket closed: by close(), or under us
            if not self._closing and not self._finished.is_set():
                self._error = ConnectError(
                    f"the transcription socket closed before 'done' ({type(exc).__name__})",
                    url=None)
        finally:
            self._finished.set()
            self._items.put(None)
            with contextlib.suppress(Exception):
                self._port.close()
            self._port.release()


def _frame(data: str | None) -> dict[str, Any]:
    try:
        frame = json.loads(data) if isinstance(data, str) else None
    except ValueError:
        frame = None
    return frame if isinstance(frame, dict) else {}


def _refusal(frame: Mapping[str, Any]) -> RestError:
    code = text_field(frame, "code") or "UPSTREAM_ERROR"
    text = text_field(frame, "error") or "the transcription was refused"
    return RestError(f"live transcription failed ({code}): {text}", status=200,
                     server_message=code)


def _final(frame: Mapping[str, Any]) -> FinalTranscript:
    return FinalTranscript(
        text_field(frame, "text"), number_field(frame, "start"), number_field(frame, "end"),
        text_field(frame, "language") or None, speaker_label(frame), words(frame))


def words(raw: Mapping[str, Any]) -> tuple[TranscriptWord, ...]:
    """The timed words of a transcript or a segment."""
    return tuple(TranscriptWord(text_field(w, "word"), number_field(w, "start") or 0.0,
                                number_field(w, "end") or 0.0, speaker_label(w))
                 for w in rows(raw, "words"))


def speaker_label(raw: Mapping[str, Any]) -> str | None:
    """A speaker label as text ("0", "1"...); the wire may send it as a number."""
    value = raw.get("speaker")
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
