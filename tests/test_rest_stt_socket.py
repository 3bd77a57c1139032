"""The live-transcription socket's failures before ``ready`` are typed voicesync errors,
within the `Rest` timeout, and leave no reader behind (scripted peers on loopback)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from helpers import CANARY_KEY, sdk_threads, until
from websockets.sync.server import ServerConnection, serve

import voicesync
from voicesync.rest import NotFoundError, Rest, RestError, UpgradeRequiredError


@contextmanager
def _refusing(status: bytes) -> Iterator[str]:
    """A server that answers the upgrade with an HTTP status line; yields its http:// URL."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n")

    server = threading.Thread(target=answer, name="test-refusing", daemon=True)
    server.start()
    with listener:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
        server.join(5)


@contextmanager
def _upgrading(handler: Callable[[ServerConnection], None]) -> Iterator[str]:
    """A WebSocket server running `handler` per connection; yields its http:// URL."""
    with serve(handler, "127.0.0.1", 0) as server:
        runner = threading.Thread(target=server.serve_forever, name="test-ws", daemon=True)
        runner.start()
        yield f"http://127.0.0.1:{server.socket.getsockname()[1]}"
        server.shutdown()
        runner.join(5)


@pytest.mark.parametrize(("status", "error"), [
    (b"401 Unauthorized", voicesync.AuthenticationError),
    (b"402 Payment Required", UpgradeRequiredError),
    (b"404 Not Found", NotFoundError),
    (b"500 Internal Server Error", RestError),
])
def test_an_upgrade_refused_with_a_status_raises_its_rest_error(
        status: bytes, error: type[Exception]) -> None:
    with _refusing(status) as url, pytest.raises(error, match=status[:3].decode()) as raised:
        Rest(CANARY_KEY, url, timeout=5).audio.transcribe_stream()
    assert CANARY_KEY not in str(raised.value)
    if isinstance(raised.value, RestError):
        assert raised.value.status == int(status[:3])


def test_a_server_that_closes_before_ready_raises_connect_error() -> None:
    with _upgrading(lambda ws: ws.close()) as url, \
            pytest.raises(voicesync.ConnectError, match="before 'ready'"):
        Rest(CANARY_KEY, url, timeout=5).audio.transcribe_stream()


def test_a_server_that_never_says_ready_times_out_within_the_rest_timeout() -> None:
    release = threading.Event()

    def silent(ws: ServerConnection) -> None:
        release.wait(10)

    with _upgrading(silent) as url:
        started = time.monotonic()
        with pytest.raises(voicesync.ConnectTimeout):
            Rest(CANARY_KEY, url, timeout=0.5).audio.transcribe_stream()
        took = time.monotonic() - started
        release.set()
    assert took < 1.0, f"took {took:.2f} s for a 0.5 s timeout"
    until(lambda: not {"voicesync-writer", "voicesync-stt-reader"} & set(sdk_threads()),
          2, "the stream's writer to end")
