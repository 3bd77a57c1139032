"""The `voicesync-reader` thread: open, handshake, read until the socket drops, redial."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

from voicesync import _codec, _control
from voicesync._control import Control
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

logger = logging.getLogger(__name__)
_DISPLACED_CODE = 4001


class Session(Protocol):
    """What the reader reads and does on its client: a narrow seam (a `Client`'s
    `ClientPorts` is one), so the reader can be driven without a client and imports none."""

    @property
    def url(self) -> str: ...
    @property
    def api_key(self) -> str | None: ...  # for the greeting, and to redact it from what arrives
    @property
    def connect_timeout(self) -> float: ...
    @property
    def reconnect(self) -> bool: ...
    @property
    def max_frame_bytes(self) -> int: ...
    @property
    def control(self) -> Control: ...
    def open_port(self) -> Port:
        """A new, unopened transport; a send stall on it declares the connection dead."""
    def publish(self, port: Port | None) -> None:
        """The transport senders use from now on (None between connections)."""
    def port(self) -> Port | None: ...
    def is_connected(self) -> bool: ...
    def dead_reason(self) -> str | None:
        """Why the heartbeat or a send stall declared the connection dead, if it did."""
    def refusal(self) -> AuthenticationError | None:
        """The AuthenticationError of a refused key, once the dispatcher saw it."""
    def sent(self, text: str) -> None:
        """A frame went out on the socket (the greeting; the outbox reports the rest)."""
    def received(self, text: str, at: float) -> None:
        """A frame arrived (redacted): liveness, counters, the recording."""
    def count(self, name: str) -> None: ...
    def apply(self, frame: dict[str, Any], received_at: float, size: int) -> None: ...
    def dropped(self, reason: str, *, was_connected: bool) -> None:
        """The connection ended: end calls locally, tell the app."""
    def gave_up(self, error: VoiceSyncError, *, initial: bool) -> None: ...
    def backoff(self, attempt: int) -> float: ...
    def reconnecting(self, attempt: int, delay: float) -> None: ...


class Reader:
    """Owns the socket's read side for one client and drives reconnects.

    The reader is the only thread that calls recv(); it applies every frame through
    the client's Dispatcher (which never runs user code) and redials with jittered
    exponential backoff until the client closes, the key is refused, the agent is
    displaced, or reconnect is off. A failure before the first `connected` is handed
    to the waiting `connect()` instead of being retried.
    """

    def __init__(self, session: Session, first_timeout: float) -> None:
        self._host = session
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
        transport = self._host.port()
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
        host = self._host
        _control.bind(host.control)  # aborts applied here finish on the control thread
        never_wait()  # a full outbox refuses the reader's frames rather than blocking it
        attempt = 0
        ever_connected = False
        timeout = self._first_timeout
        while not self.stopping.is_set():
            transport = host.open_port()
            error = self._session(transport, timeout)
            timeout = host.connect_timeout
            if error is not None:  # close reasons and server texts may echo the key
                redact_error(error, host.api_key)
            connected_this_time = host.is_connected()
            ever_connected = ever_connected or connected_this_time
            if connected_this_time:
                attempt = 0
            reason = _reason(error, host.dead_reason())
            host.dropped(reason, was_connected=connected_this_time)
            transport.close()
            transport.release()
            if self.stopping.is_set():
                return
            give_up = self._fatal(error, reason)
            if give_up is not None or not ever_connected or not host.reconnect:
                self.final_error = give_up or error or ConnectionClosedError(
                    f"connection closed ({reason})", reason=reason)
                host.gave_up(self.final_error, initial=not ever_connected)
                return
            delay = host.backoff(attempt)
            attempt += 1
            logger.info("connection lost (%s); reconnecting in %.2f s", reason, delay)
            if self.stopping.wait(delay):
                return
            host.reconnecting(attempt, delay)

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
        host = self._host
        deadline = time.monotonic() + timeout
        host.publish(transport)  # published first: close() can break a hung open()
        try:
            if self.stopping.is_set():  # stop() ran before the transport was published
                return None
            transport.open(host.url, timeout)
            if self.stopping.is_set():
                return None
            transport.set_timeout(max(0.001, deadline - time.monotonic()))
            greeting = _codec.dumps({"event": "connect", "api_key": host.api_key})
            transport.greet(greeting)
            host.sent(greeting)  # a recording redacts it on its own thread
            self._read(transport, deadline, timeout)
        except AuthenticationError as exc:
            return exc
        except ConnectionClosedError as exc:
            if exc.code == CLOSE_POLICY and not host.is_connected():
                return AuthenticationError(
                    f"the platform closed the connection with 1008 ({exc.reason}); "
                    "check PINECALL_API_KEY", url=host.url)
            return exc
        except ConnectError as exc:
            return exc
        except Exception as exc:  # the reader must outlive any surprise from the socket layer
            logger.exception("unexpected error on the connection")
            return ConnectionClosedError(f"connection lost: {exc!r}", reason="connection_lost")
        finally:
            host.publish(None)
        return None

    def _read(self, transport: Port, deadline: float, timeout: float) -> None:
        host = self._host
        while True:
            try:
                text = transport.recv()
            except ProtocolError as exc:
                host.count("malformed_frames")
                self._bad_frames.warning("skipped a frame: %s", clip(str(exc)))
                continue
            except FrameTooLargeError:
                host.count("oversize_frames")
                logger.warning("closed the connection (1009): a frame was over %d bytes",
                               host.max_frame_bytes)
                raise
            except ConnectTimeout:
                if host.is_connected():
                    continue
                raise ConnectTimeout(
                    f"no 'connected' from {host.url} within {timeout:g} s",
                    url=host.url) from None
            self._raise_refusal()
            if text is None:
                continue
            received = time.monotonic()
            text = redact(text, host.api_key)  # an echoed key must not reach logs or apps
            host.received(text, received)
            try:
                frame = _codec.loads(text)
            except ProtocolError as exc:
                host.count("malformed_frames")
                self._bad_frames.warning("skipped a frame (%s): %s", clip(str(exc)), clip(text))
                continue
            if debug_enabled(logger):
                logger.debug("<< %s", text[:2000])
            was_connected = host.is_connected()
            host.apply(frame, received, len(text))
            self._raise_refusal()
            if not was_connected:
                if host.is_connected():
                    transport.set_timeout(None)
                elif time.monotonic() > deadline:
                    raise ConnectTimeout(
                        f"no 'connected' from {host.url} within {timeout:g} s",
                        url=host.url)

    def _raise_refusal(self) -> None:
        refusal = self._host.refusal()
        if refusal is not None:
            raise refusal


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
