"""Stand-ins for the platform's standalone audio routes and its model-access table.

``POST /v1/audio/speech`` answers with a WAV (or raw PCM) of silence, 50 ms per character,
that carries the spoken text in a RIFF ``LIST/INFO`` comment; ``POST
/v1/audio/transcriptions`` reads that comment back, so speech → transcription round-trips
(any other audio transcribes to ""). ``GET /api/models/access`` answers from a small fixed
catalog. Served by `KnowledgeServer`, the simulator's HTTP server that reads request bodies.
"""

from __future__ import annotations

import io
import json
import secrets
import struct
import wave
from email.parser import BytesParser
from email.policy import HTTP
from http import HTTPStatus

from voicesync.sim._util import JsonDict

MS_PER_CHARACTER = 50
# (service, model) -> (managed, plan allows it, the org saved a key for its provider)
MODELS: dict[tuple[str, str], tuple[bool, bool, bool]] = {
    ("llm", "openai/gpt-4.1-mini"): (True, True, False),
    ("llm", "anthropic/claude-sonnet-4"): (False, True, False),
    ("tts", "elevenlabs/eleven_flash_v2_5"): (True, True, False),
    ("stt", "deepgram/nova-3"): (True, True, False),
    ("stt", "soniox/stt-rt-v5"): (True, False, False),
}
Answer = tuple[HTTPStatus, str, bytes, dict[str, str]]  # status, content type, body, headers


def model_access(service: str, model: str) -> JsonDict:
    known = MODELS.get((service, model))
    managed, plan, key = known or (False, False, False)
    allowed = known is not None and plan and (managed or key)
    reason = ("unknown_model" if known is None else "plan_restricted" if not plan
              else "ok" if allowed else "byok_key_required")
    return {"service": service, "provider": model.split("/", maxsplit=1)[0], "model": model,
            "exists": known is not None, "managed": managed, "planAllowed": plan,
            "hasKey": key, "requiresKey": known is not None and not managed and not key,
            "allowed": allowed, "reason": reason}


def models_route(query: dict[str, str]) -> JsonDict:
    if "service" in query or "model" in query:
        return model_access(query.get("service", ""), query.get("model", ""))
    return {"models": [model_access(s, m) for s, m in MODELS]}


def audio_route(method: str, path: str, content_type: str, body: bytes) -> Answer:
    if method == "POST" and path == "/v1/audio/speech":
        return _speech(body)
    if method == "POST" and path == "/v1/audio/transcriptions":
        return _transcribe(content_type, body)
    return _refuse(HTTPStatus.NOT_FOUND, "NOT_FOUND", f"Not found: {method} {path}")


def _refuse(status: HTTPStatus, code: str, error: str) -> Answer:
    return status, "application/json", json.dumps({"error": error, "code": code}).encode(), {}


def _speech(body: bytes) -> Answer:
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        request = None
    if not isinstance(request, dict):
        return _refuse(HTTPStatus.BAD_REQUEST, "BAD_REQUEST", "the body must be a JSON object")
    text, voice = request.get("input"), request.get("voice")
    fmt, rate = request.get("response_format", "pcm"), request.get("sample_rate", 16000)
    if not isinstance(text, str) or not 1 <= len(text) <= 5000:
        return _refuse(HTTPStatus.BAD_REQUEST, "BAD_INPUT", "input must be 1..5000 characters")
    if not isinstance(voice, str) or "/" not in voice:
        return _refuse(HTTPStatus.BAD_REQUEST, "BAD_VOICE", f"unknown voice {voice!r}")
    if fmt not in ("pcm", "wav") or rate not in (16000, 24000):
        return _refuse(HTTPStatus.BAD_REQUEST, "BAD_FORMAT",
                       "the simulator synthesises pcm or wav at 16000 or 24000 Hz")
    ms = MS_PER_CHARACTER * len(text)
    pcm = bytes(rate * 2 * ms // 1000)
    audio = _wav(pcm, rate, text) if fmt == "wav" else pcm
    headers = {"x-pinecall-request-id": "tts_" + secrets.token_hex(6),
               "x-sample-rate": str(rate), "x-pinecall-characters": str(len(text)),
               "x-pinecall-audio-ms": str(ms)}
    return HTTPStatus.OK, f"audio/{fmt}", audio, headers


def _wav(pcm: bytes, rate: int, comment: str) -> bytes:
    note = comment.encode() + b"\0"
    note += b"\0" * (len(note) % 2)
    info = b"INFO" + b"ICMT" + struct.pack("<I", len(note)) + note
    chunks = (b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
              + b"LIST" + struct.pack("<I", len(info)) + info
              + b"data" + struct.pack("<I", len(pcm)) + pcm)
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def _comment(audio: bytes) -> str:
    """The ICMT text of a RIFF file's LIST/INFO chunk, or ""."""
    at = audio.find(b"ICMT")
    if not audio.startswith(b"RIFF") or at < 0 or at + 8 > len(audio):
        return ""
    size = struct.unpack_from("<I", audio, at + 4)[0]
    return audio[at + 8:at + 8 + size].split(b"\0")[0].decode("utf-8", "replace")


def _transcribe(content_type: str, body: bytes) -> Answer:
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    fields: dict[str, bytes] = {}
    for part in message.iter_parts() if message.is_multipart() else ():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload
    audio = fields.get("file")
    if not audio:
        return _refuse(HTTPStatus.BAD_REQUEST, "BAD_REQUEST", "a 'file' part is required")
    try:
        with wave.open(io.BytesIO(audio)) as wav:
            duration = wav.getnframes() / wav.getframerate()
    except (wave.Error, EOFError, ZeroDivisionError):
        duration = len(audio) / 32000  # raw 16 kHz 16-bit mono, as far as we know
    text = _comment(audio)
    language = fields.get("language", b"en").decode()
    reply: JsonDict = {"text": text, "language": language, "duration": round(duration, 3)}
    if fields.get("response_format") == b"verbose_json":
        words = text.split()
        step = duration / max(1, len(words))
        speaker = "0" if fields.get("diarize") == b"true" else None
        reply["model"] = fields.get("model", b"elevenlabs/scribe_v1").decode()
        reply["words"] = [{"word": w, "start": round(i * step, 3),
                           "end": round((i + 1) * step, 3),
                           **({"speaker": speaker} if speaker else {})}
                          for i, w in enumerate(words)]
        reply["segments"] = [{"id": 0, "start": 0.0, "end": round(duration, 3), "text": text,
                              **({"speaker": speaker} if speaker else {})}] if text else []
    headers = {"x-pinecall-request-id": "stt_" + secrets.token_hex(6)}
    return HTTPStatus.OK, "application/json", json.dumps(reply).encode(), headers
