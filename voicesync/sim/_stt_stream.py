"""The live-transcription socket (``/v1/audio/transcriptions/stream``) on the simulator's
port: `ready`, a `partial` per audio chunk, a `final` per `finalize` and at `stop`, then
`done` with the audio's length, and a normal close.

The stand-in recognises no words: a segment's text says how much audio it spans, e.g.
``"[1.50 s of audio]"``, so a test can check what reached the server and in which pieces.
"""

from __future__ import annotations

import json
import secrets
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection

from voicesync.sim._util import JsonDict

STREAM_PATH = "/v1/audio/transcriptions/stream"
_RATES = (8000, 16000, 24000, 48000)
_BYTES_PER_SAMPLE = {"linear16": 2, "mulaw": 1}


def serve_transcription(ws: ServerConnection) -> None:
    """Play one live transcription on its connection. The connection's thread."""
    path = ws.request.path if ws.request is not None else ""
    query = {k: v[-1] for k, v in parse_qs(urlsplit(path).query).items()}
    rate, encoding = query.get("sample_rate", "16000"), query.get("encoding", "linear16")
    if not rate.isdigit() or int(rate) not in _RATES or encoding not in _BYTES_PER_SAMPLE:
        _send(ws, {"type": "error", "code": "BAD_ARGS",
                   "error": "sample_rate must be 8000/16000/24000/48000, encoding "
                            "linear16 or mulaw"})
        ws.close(1008, "bad arguments")
        return
    per_second = int(rate) * _BYTES_PER_SAMPLE[encoding]
    language, speaker = query.get("language", "en"), query.get("diarize") == "true"
    request_id = "stt_" + secrets.token_hex(6)
    _send(ws, {"type": "ready", "request_id": request_id,
               "model": query.get("model", "deepgram/nova-3"), "sample_rate": int(rate),
               "encoding": encoding, "diarize": speaker})
    heard = committed = 0  # bytes

    def final() -> None:
        nonlocal committed
        if heard > committed:
            _send(ws, {"type": "final", "text": _span(heard - committed, per_second),
                       "start": committed / per_second, "end": heard / per_second,
                       "language": language, **({"speaker": 0} if speaker else {})})
            committed = heard

    try:
        for message in ws:
            if isinstance(message, bytes):
                heard += len(message)
                _send(ws, {"type": "partial", "text": _span(heard - committed, per_second)})
                continue
            kind = _kind(message)
            if kind == "finalize":
                final()
            elif kind == "stop":
                final()
                seconds = heard / per_second
                _send(ws, {"type": "done", "request_id": request_id, "audio_seconds": seconds,
                           "billed_minutes": round(seconds / 60, 4)})
                ws.close(1000)
                return
            else:
                _send(ws, {"type": "error", "code": "BAD_MESSAGE",
                           "error": f"unknown message type {kind!r}"})
    except ConnectionClosed:
        pass


def _span(size: int, per_second: int) -> str:
    return f"[{size / per_second:.2f} s of audio]"


def _kind(message: str) -> str:
    try:
        frame = json.loads(message)
    except ValueError:
        return ""
    return str(frame.get("type", "")) if isinstance(frame, dict) else ""


def _send(ws: ServerConnection, frame: JsonDict) -> None:
    ws.send(json.dumps(frame))
