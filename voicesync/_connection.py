"""The `voicesync-reader` thread: open, handshake, read until the socket drops, redial."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from voicesync import _codec, _control
from voicesync._log import debug_enabled, redact, redact_error
from voicesync._outbox import never_wait
from voicesync._port import Port
from voicesync._throttle import Throttled, clip
from voicesync._transport import CLOSE_POLICY, FrameTooLargeError
from voicesync.errors import (
    AuthenticationError,
    ConnectError,
    ConnectionClosedError,
    ConnectTimeout,
    ProtocolError,
    VoiceSyncError,
)

if TYPE_CHECKING:
    from voicesync.client import Client

logger = logging.getLogger(__name__)
_DISPLACED_CODE = 4001


class Reader:
    """Owns the socket's read side for one client and drives reconnects.

    The reader is the only thread that calls recv(); it applies every frame through
    the client's Dispatcher (which never runs user code) and redials with jittered
    exponential backoff until the client closes, the key is refused, the agent is
    displaced, or reconnect is off. A failure before the first `connected` is handed
    to the waiting `connect()` instead of being retried.
    """

    def __init__(self, client: Client, first_timeout: float) -> None:
        self._client = client
        self._first_timeout = first_timeout  # connect(timeout=...) bounds the first dial
        self._thread = threading.Thread(target=self._run, name="voicesync-reader", daemon=True)
        self.stopping = threading.Event()  # this reader's own: a later connect() gets a new one
        self.final_error: VoiceSyncError | None = None
        self._bad_frames = Throttled(logger)  # one line per 5 s however many frames

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop redialling and break the current attempt or connection. Any thread."""
        self.stopping.set()
        transport = self._client._transport
        if transport is not None:
            transport.close()

    def join(self, timeout: float) -> bool:
        """Wait for the thread to end; never joins the calling thread itself."""
        if self._thread is not threading.current_thread():
            self._thread.join(max(0.0, timeout))
        return not self._thread.is_alive()

    @property
    def is_current(self) -> bool:
        return self._thread is threading.current_thread()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        client = self._client
        _control.bind(client._control)  # aborts applied here finish on the control thread
        never_wait()  # a full outbox refuses the reader's frames rather than blocking it
        attempt = 0
        ever_connected = False
        timeout = self._first_timeout
        while not self.stopping.is_set():
            transport = client._transport_factory(
                max_frame_bytes=client.max_frame_bytes, ssl_context=client._ssl_context,
                send_timeout=client._send_timeout,
                on_stall=lambda: client._declare_dead("send_timeout"))
            error = self._session(transport, timeout)
            timeout = client.connect_timeout
            if error is not None:  # close reasons and server texts may echo the key
                redact_error(error, client._api_key)
            connected_this_time = client._connected.is_set()
            ever_connected = ever_connected or connected_this_time
            if connected_this_time:
                attempt = 0
            reason = _reason(error, client._dead_reason)
            client._on_disconnected(reason, was_connected=connected_this_time)
            transport.close()
            transport.release()
            if self.stopping.is_set():
                return
            give_up = self._fatal(error, reason)
            if give_up is not None or not ever_connected or not client.reconnect:
                self.final_error = give_up or error or ConnectionClosedError(
                    f"connection closed ({reason})", reason=reason)
                client._reader_stopped(self.final_error, initial=not ever_connected)
                return
            delay = client._backoff.delay(attempt)
            attempt += 1
            logger.info("connection lost (%s); reconnecting in %.2f s", reason, delay)
            if self.stopping.wait(delay):
                return
            client._emit_client("reconnecting", attempt, delay)

    def _fatal(self, error: VoiceSyncError | None, reason: str) -> VoiceSyncError | None:
        if isinstance(error, AuthenticationError):
            return error
        if isinstance(error, ConnectionClosedError) and error.code == _DISPLACED_CODE:
            return ConnectionClosedError(
                "another connection took over this agent (displaced); not reconnecting",
                code=error.code, reason=reason)
        return None

    def _session(self, transport: Port, timeout: float) -> VoiceSyncError | None:
        """One connection, start to end; returns what ended it (None: closed by us)."""
        client = self._client
        deadline = time.monotonic() + timeout
        client._transport = transport  # published first: close() can break a hung open()
        try:
            if self.stopping.is_set():  # stop() ran before the transport was published
                return None
            transport.open(client.url, timeout)
            if self.stopping.is_set():
                return None
            transport.set_timeout(max(0.001, deadline - time.monotonic()))
            greeting = _codec.dumps({"event": "connect", "api_key": client._api_key})
            transport.greet(greeting)
            if client._recorder is not None:
                client._recorder.sent(greeting)  # redacted on the recorder's thread
            self._read(transport, deadline, timeout)
        except AuthenticationError as exc:
            return exc
        except ConnectionClosedError as exc:
            if exc.code == CLOSE_POLICY and not client._connected.is_set():
                return AuthenticationError(
                    f"the platform closed the connection with 1008 ({exc.reason}); "
                    "check PINECALL_API_KEY", url=client.url)
            return exc
        except ConnectError as exc:
            return exc
        except Exception as exc:  # the reader must outlive any surprise from the socket layer
            logger.exception("unexpected error on the connection")
            return ConnectionClosedError(f"connection lost: {exc!r}", reason="connection_lost")
        finally:
            client._transport = None
        return None

    def _read(self, transport: Port, deadline: float, timeout: float) -> None:
        client = self._client
        while True:
            try:
                text = transport.recv()
            except ProtocolError as exc:
                client._count("malformed_frames")
                self._bad_frames.warning("skipped a frame: %s", clip(str(exc)))
                continue
            except FrameTooLargeError:
                client._count("oversize_frames")
                logger.warning("closed the connection (1009): a frame was over %d bytes",
                               client.max_frame_bytes)
                raise
            except ConnectTimeout:
                if client._connected.is_set():
                    continue
                raise ConnectTimeout(
                    f"no 'connected' from {client.url} within {timeout:g} s",
                    url=client.url) from None
            if client._auth_error is not None:
                raise client._auth_error
            if text is None:
                continue
            received = time.monotonic()
            client._last_rx = received
            client._count("frames_received")
            text = redact(text, client._api_key)  # an echoed key must not reach logs or apps
            if client._recorder is not None:
                client._recorder.received(text)
            try:
                frame = _codec.loads(text)
            except ProtocolError as exc:
                client._count("malformed_frames")
                self._bad_frames.warning("skipped a frame (%s): %s", clip(str(exc)),
                                    clip(redact(text, client._api_key)))
                continue
            if debug_enabled(logger):
                logger.debug("<< %s", redact(text, client._api_key)[:2000])
            was_connected = client._connected.is_set()
            client._dispatcher.handle(frame, received, len(text))  # lanes charge its size
            if client._auth_error is not None:
                raise client._auth_error
            if not was_connected:
                if client._connected.is_set():
                    transport.set_timeout(None)
                elif time.monotonic() > deadline:
                    raise ConnectTimeout(
                        f"no 'connected' from {client.url} within {timeout:g} s",
                        url=client.url)


def _reason(error: VoiceSyncError | None, dead_reason: str | None) -> str:
    if dead_reason:
        return dead_reason
    if error is None:
        return "client_disconnect"
    if isinstance(error, ConnectionClosedError):
        return error.reason or "connection_lost"
    if isinstance(error, AuthenticationError):
        return "auth_failed"
    if isinstance(error, ConnectTimeout):
        return "connect_timeout"
    return "connect_failed"
