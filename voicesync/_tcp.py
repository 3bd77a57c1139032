"""A TCP connect that close() can cancel: the transport dials through it (no
websocket-client here; `_transport.py` stays the only module that imports it)."""

from __future__ import annotations

import errno
import os
import select
import socket
import threading
import time
from typing import Any

_DIAL_SLICE = 0.05  # seconds between checks for close() while a TCP connect is pending


def connect(sock: socket.socket, address: Any, deadline: float,
            cancelled: threading.Event) -> None:
    """A non-blocking connect, watched in short slices so `cancelled` can stop it.

    Raises TimeoutError at `deadline`, ConnectionAbortedError once `cancelled` is set,
    OSError when the connect fails; leaves `sock` blocking when it succeeds.
    """
    sock.setblocking(False)
    code = sock.connect_ex(address)
    while code in (errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK):
        if cancelled.is_set():
            raise ConnectionAbortedError(errno.ECONNABORTED, "closed while connecting")
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(errno.ETIMEDOUT, "timed out connecting")
        _, writable, _ = select.select([], [sock], [], min(left, _DIAL_SLICE))
        if writable:
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            break
    if code:
        raise OSError(code, os.strerror(code))
    sock.setblocking(True)
