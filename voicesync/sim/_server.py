"""The simulator's WebSocket server plumbing: websockets' logger and connection, adjusted."""

from __future__ import annotations

import logging
import sys
from typing import Any

from websockets.sync.server import ServerConnection

logger = logging.getLogger(__name__)


class _ServerLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """websockets' own "websockets.server" logger, minus one false alarm.

    When a closing handshake outlives `close_timeout`, websockets closes the socket from
    the closing thread while its reader thread may already hold bytes it read; feeding
    them after the end of stream raises EOFError, which websockets logs as an
    "unexpected internal error" with a traceback. The connection was being closed
    either way, so that one record is kept at DEBUG instead.
    """

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if (level >= logging.ERROR and msg == "unexpected internal error"
                and isinstance(sys.exc_info()[1], EOFError)):
            logger.debug("websockets: data after the end of a closing connection ignored")
            return
        super().log(level, msg, *args, **kwargs)


ws_logger = _ServerLog(logging.getLogger("websockets.server"))


class NamedConnection(ServerConnection):
    """websockets' connection, with its reader thread named like the simulator's others."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recv_events_thread.name = f"voicesync-sim-recv-{self.id.hex[:8]}"
