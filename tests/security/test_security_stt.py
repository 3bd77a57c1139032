"""The live-transcription socket carries the key in its upgrade header, to the configured
host only: a redirect is refused, not followed."""

from __future__ import annotations

import socket
import threading

import pytest
from helpers import CANARY_KEY

import voicesync
from voicesync._rest_stt import STREAM_PATH
from voicesync.rest import Rest


def test_live_transcription_does_not_follow_a_redirect() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    heard: list[bytes] = []

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            heard.append(conn.recv(65536))
            conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: ws://127.0.0.1:9/elsewhere\r\n"
                         b"Content-Length: 0\r\n\r\n")

    server = threading.Thread(target=answer, name="test-redirect", daemon=True)
    server.start()
    with listener:
        port = listener.getsockname()[1]
        with pytest.raises(voicesync.ConnectError, match="redirect"):
            Rest(CANARY_KEY, f"http://127.0.0.1:{port}").audio.transcribe_stream()
        server.join(5)
    request = heard[0].decode()
    assert request.startswith(f"GET {STREAM_PATH}?sample_rate=16000&encoding=linear16 ")
    assert CANARY_KEY not in request.split("\r\n")[0]  # in the header, never the URL

