"""The websocket-client internals `voicesync/_transport.py` relies on. A release that
renames or reshapes one fails here, loudly, instead of in production."""

from __future__ import annotations

import inspect

import websocket
from websocket import _abnf, _core, _http, _socket, _url


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
    frame = websocket.ABNF.create_frame(b"hi", websocket.ABNF.OPCODE_TEXT).format()
    assert frame[0] == 0x81 and frame[1] & 0x7F == 2  # FIN + text, masked, 2 bytes
    assert websocket.ABNF.OPCODE_PONG == 0xA and websocket.ABNF.OPCODE_CLOSE == 0x8
