"""`Rest.audio`: standalone text-to-speech and speech-to-text, with no agent and no call.

Both run on the voice API (`Rest.url`, or `audio_url`): ``POST /v1/audio/speech`` answers
with the audio itself, ``POST /v1/audio/transcriptions`` takes one file (multipart) and
answers with its transcript. Blocking; any thread.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from voicesync._codec import int_field, number_field, text_field
from voicesync._rest import rows
from voicesync._rest_stt import (
    Encoding,
    TranscriptionStream,
    TranscriptWord,
    open_stream,
    speaker_label,
    words,
)
from voicesync.errors import RestError

if TYPE_CHECKING:
    from voicesync.rest import Rest

SpeechFormat = Literal["pcm", "wav", "mp3"]
_FORMATS: dict[str, SpeechFormat] = {"audio/wav": "wav", "audio/x-wav": "wav",
                                     "audio/wave": "wav", "audio/mpeg": "mp3",
                                     "audio/mp3": "mp3", "audio/pcm": "pcm", "audio/l16": "pcm"}


@dataclass(frozen=True)
class Speech:
    """One synthesised utterance. `audio` is the whole body: pcm and wav are 16-bit mono
    at `sample_rate`; `characters` were billed; `audio_ms` is the audio's length."""

    audio: bytes = field(repr=False)  # a second of audio is 32 KB: not for reprs and logs
    format: SpeechFormat
    sample_rate: int
    request_id: str
    characters: int
    audio_ms: int


@dataclass(frozen=True)
class TranscriptSegment:
    id: int
    start: float
    end: float
    text: str
    speaker: str | None = None


@dataclass(frozen=True)
class Transcription:
    """A transcript; `words` and `segments` only when asked for (``detailed=True``)."""

    text: str
    language: str
    duration: float
    request_id: str
    model: str | None = None
    words: tuple[TranscriptWord, ...] = ()
    segments: tuple[TranscriptSegment, ...] = ()


class Audio:
    """The audio calls of one `Rest` (its key, URL and timeout). Immutable; any thread."""

    def __init__(self, rest: Rest) -> None:
        self._rest = rest

    def speech(self, text: str, voice: str, *, model: str | None = None,
               language: str | None = None, format: SpeechFormat = "wav",
               sample_rate: Literal[16000, 24000] | None = None,
               speed: float | None = None) -> Speech:
        """Synthesise `text` (1..5000 characters) with `voice` (``"provider/alias"``, as an
        agent's `voice`, or a provider's voice id). Blocks until the whole audio arrived."""
        if not text or len(text) > 5000:
            raise ValueError("speech text must be 1..5000 characters")
        body: dict[str, Any] = {"input": text, "voice": voice, "response_format": format}
        extra = {"model": model, "language": language, "sample_rate": sample_rate,
                 "speed": speed}
        body.update({k: v for k, v in extra.items() if v is not None})
        answer = self._rest._send("POST", "/v1/audio/speech", body=body, accept="audio/*")
        kind = answer.headers.get("content-type", "").split(";")[0].strip().lower()
        if not kind.startswith("audio/"):
            raise RestError(f"the speech answer is not audio ({kind or 'no content type'})",
                            status=answer.status)
        head = answer.headers
        rate = _header_int(head, "x-sample-rate") or sample_rate or 16000
        fmt = _FORMATS.get(kind, format)
        audio_ms = _header_int(head, "x-pinecall-audio-ms")
        if audio_ms is None:
            payload = len(answer.content) - (44 if fmt == "wav" else 0)
            audio_ms = 0 if fmt == "mp3" else max(0, payload) * 1000 // (rate * 2)
        characters = _header_int(head, "x-pinecall-characters")
        return Speech(answer.content, fmt, rate, head.get("x-pinecall-request-id", ""),
                      len(text) if characters is None else characters, audio_ms)

    def transcribe_stream(self, *, model: str | None = None, language: str | None = None,
                          sample_rate: Literal[8000, 16000, 24000, 48000] = 16000,
                          encoding: Encoding = "linear16", diarize: bool = False
                          ) -> TranscriptionStream:
        """Transcribe audio live as you `write` it (``with`` it, or `end`/`close` it).

        Blocks until the server is listening (up to the `Rest` timeout); refusals raise
        as REST ones do (`AuthenticationError`, `UpgradeRequiredError`, `RestError`)::

            with rest.audio.transcribe_stream(language="en") as live:
                for chunk in microphone():        # 16-bit mono PCM at sample_rate
                    live.write(chunk)
                done = live.end()                 # TranscriptionDone(audio_seconds, ...)
                finals = [i.text for i in live if isinstance(i, FinalTranscript)]
        """
        params = {"sample_rate": str(sample_rate), "encoding": encoding,
                  **({"model": model} if model else {}),
                  **({"language": language} if language else {}),
                  **({"diarize": "true"} if diarize else {})}
        rest = self._rest
        return open_stream(rest.audio_url, rest._api_key, params, rest.timeout)

    def transcribe(self, audio: bytes | str | os.PathLike[str], *,
                   filename: str | None = None, content_type: str | None = None,
                   model: str | None = None, language: str | None = None,
                   diarize: bool = False, detailed: bool = False) -> Transcription:
        """Transcribe one recording: bytes, or a path to read. The container is named by
        `content_type`, else by the file name's extension, else WAV. `detailed` adds
        words and segments (with speakers when `diarize`)."""
        if isinstance(audio, bytes):
            data, name = audio, filename or "audio.wav"
        else:
            data, name = Path(audio).read_bytes(), filename or Path(audio).name
        kind = content_type or mimetypes.guess_type(name)[0] or "audio/wav"
        form = {"response_format": "verbose_json" if detailed else "json",
                **({"model": model} if model else {}),
                **({"language": language} if language else {}),
                **({"diarize": "true"} if diarize else {})}
        answer = self._rest._send("POST", "/v1/audio/transcriptions",
                                  files={"file": (name, data, kind)}, data=form)
        raw = self._rest._json(answer)
        return Transcription(
            text_field(raw, "text"), text_field(raw, "language"),
            number_field(raw, "duration") or 0.0, answer.headers.get("x-pinecall-request-id", ""),
            text_field(raw, "model") or None,
            words(raw),
            tuple(TranscriptSegment(int_field(s, "id") or 0, number_field(s, "start") or 0.0,
                                    number_field(s, "end") or 0.0, text_field(s, "text"),
                                    speaker_label(s))
                  for s in rows(raw, "segments")))


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name, "")
    return int(value) if value.isdigit() else None
