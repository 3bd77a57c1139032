"""The websocket-client internals `voicesync/_transport.py` relies on. A release that
renames or reshapes one fails here, loudly, instead of in production."""

from __future__ import annotations

import inspect
import io
import os
import threading

import websocket
from websocket import _abnf, _core, _http, _socket, _url

from voicesync._framing import frame as _frame, mask_key as _mask_key


def test_module_level_names() -> None:
    assert callable(_http._ssl_socket)
    assert isinstance(_socket.DEFAULT_SOCKET_OPTION, list)
    assert callable(_url.get_proxy_info) and callable(_url.parse_url)
    host, port, resource, secure = _url.parse_url("wss://example.test:8443/client")
    assert (host, port, resource, secure) == ("example.test", 8443, "/client", True)


def test_the_read_path_we_wrap() -> None:
    ws = websocket.WebSocket(skip_utf8_validation=True, enable_multithread=True)
    # The size cap wraps the frame buffer's sized reads and the fragment assembler.
    assert callable(ws.frame_buffer.recv) and callable(ws.frame_buffer.recv_strict)
    assert callable(ws._recv)
    assembler = ws.cont_frame
    assert isinstance(assembler, _abnf.continuous_frame)
    assert assembler.cont_data is None and callable(assembler.add)
    # recv_data_frame must assemble through cont_frame.add and answer pings and closes
    # through self.pong / self.send_close, which the transport routes to its outbox.
    source = inspect.getsource(_core.WebSocket.recv_data_frame)
    for call in ("self.recv_frame()", "self.cont_frame.add(", "self.pong(", "self.send_close("):
        assert call in source, call
    # Payloads are read through self.recv_strict (capped) and that through self.recv
    # (the read-ahead), both looked up on the instance.
    buffer_source = inspect.getsource(_abnf.frame_buffer)
    assert "payload = self.recv_strict(length)" in buffer_source
    assert "self.recv(" in buffer_source


def test_frames_we_build() -> None:
    assert websocket.ABNF.OPCODE_PONG == 0xA and websocket.ABNF.OPCODE_CLOSE == 0x8
    # The transport builds and masks frames itself; websocket-client's own parser (the
    # one a server built on it uses) must read them back, at every length encoding.
    for size in (0, 1, 2, 125, 126, 127, 4097, 65535, 65536, 70001):
        payload = os.urandom(size)
        for opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_PONG):
            wire = _frame(payload, opcode)
            assert wire[0] == 0x80 | opcode and wire[1] & 0x80  # FIN, masked
            stream = io.BytesIO(wire)
            frame = _abnf.frame_buffer(stream.read, skip_utf8_validation=True).recv_frame()
            assert (frame.fin, frame.opcode, frame.data) == (1, opcode, payload), size
            assert stream.read() == b""  # the header's length was exact


def test_mask_keys_are_fresh_across_threads() -> None:
    keys: list[bytes] = []

    def draw() -> None:
        keys.extend(_mask_key() for _ in range(1500))  # past a refill of the pool

    threads = [threading.Thread(target=draw, name=f"voicesync-test-{i}") for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10.0)
    assert len(keys) == 6000 and all(len(key) == 4 for key in keys)
    # Random 32-bit keys: a handful of collisions among 6000 at most, never a reused block.
    assert len(set(keys)) > 5990
