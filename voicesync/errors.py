"""The error tree: one root, and what can go wrong under it, by name.

```
VoiceSyncError
├── ConfigurationError         a missing or invalid option; raised where it is passed
├── ConnectError               the socket could not be opened or the handshake failed (.url)
│   ├── AuthenticationError    the platform refused the API key; never retried
│   └── ConnectTimeout         no socket or no `connected` in time (also a TimeoutError)
├── ConnectionClosedError      the connection is gone and a command could not be sent
│   └── NotConnectedError      an operation that needs the connection, on a client that is
│                              neither connected nor connecting: call client.connect()
├── ProtocolError              a frame that could not be decoded (.frame, redacted)
├── ServerError                the platform refused a command (.code, .server_message)
│   ├── RegistrationError          an agent could not be registered (.agent_id)
│   │   ├── AgentConflictError     the agent id is held by another connection (.reason,
│   │   │                          .holder_alive, .retry_remaining)
│   │   └── ServerAtCapacityError  the platform has no free slot (.used, .limit)
│   ├── RequestRejectedError       a history/prompt request came back with an error
│   ├── CallFailedError            an outbound call was not answered (.reason)
│   └── RestError                  a REST request was refused, or its answer is not the
│       │                          documented shape (.status); in voicesync.rest
│       ├── NotFoundError          no such agent, call, knowledge base or document (404)
│       └── UpgradeRequiredError   the feature is not on the account's plan (402)
├── EventsDroppedError         handlers fell too far behind; events past the bound (.count)
├── RequestTimeout             an acknowledgement did not arrive in time (also a TimeoutError)
├── ReplyStreamClosedError     write() after end()
├── TurnRequiredError          a reply outside a handler did not say which turn it answers
└── CallEndedError             a request that needs an answer was made on an ended call (.reason)
```

Messages are sentences a person reads: they say what happened and what to do.
"""

from __future__ import annotations

__all__ = [
    "AgentConflictError",
    "AuthenticationError",
    "CallEndedError",
    "CallFailedError",
    "ConfigurationError",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionClosedError",
    "EventsDroppedError",
    "NotConnectedError",
    "NotFoundError",
    "ProtocolError",
    "RegistrationError",
    "ReplyStreamClosedError",
    "RequestRejectedError",
    "RequestTimeout",
    "RestError",
    "ServerAtCapacityError",
    "ServerError",
    "TurnRequiredError",
    "UpgradeRequiredError",
    "VoiceSyncError",
]


class VoiceSyncError(Exception):
    """The root of every error voicesync raises or reports."""


class ConfigurationError(VoiceSyncError, ValueError):
    """An option is missing or invalid; the message names the fix."""


class ConnectError(VoiceSyncError):
    """The WebSocket could not be opened, or the handshake did not complete."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class AuthenticationError(ConnectError):
    """The platform refused the API key. voicesync never retries this on its own."""


class ConnectTimeout(ConnectError, TimeoutError):
    """The socket did not open, or the server sent no `connected`, within the timeout."""


class ConnectionClosedError(VoiceSyncError):
    """The connection is closed, so a command could not be sent or completed."""

    def __init__(self, message: str, *, code: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class NotConnectedError(ConnectionClosedError):
    """The client is not connected and not connecting (never connected, gave up, or closed).

    Raised at once by operations that need the connection (`dial`, `wait_ready`,
    `create_token`, history requests) instead of waiting out their timeout.
    """


class ProtocolError(VoiceSyncError):
    """A frame from the server could not be decoded; it was skipped."""

    def __init__(self, message: str, *, frame: str = "") -> None:
        super().__init__(message)
        self.frame = frame


class ServerError(VoiceSyncError):
    """The platform answered a command with an error frame."""

    def __init__(self, message: str, *, code: str = "", server_message: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.server_message = server_message


class RegistrationError(ServerError):
    """An agent could not be registered with the platform."""

    def __init__(
        self, message: str, *, agent_id: str, code: str = "REGISTRATION_ERROR",
        server_message: str = "",
    ) -> None:
        super().__init__(message, code=code, server_message=server_message)
        self.agent_id = agent_id


class AgentConflictError(RegistrationError):
    """Another live connection holds this agent id.

    `reason` is ``"server_fatal"`` (the platform proved the holder alive),
    ``"retry_budget_exhausted"`` (voicesync retried for the whole budget) or ``"retrying"``
    (raised by `dial()`/`wait_ready()` while voicesync still retries in the background).
    `holder_alive` is the platform's hint (None if it gave none); `retry_remaining` is
    how many seconds of the retry budget are left (0 once it gave up).
    """

    def __init__(
        self, message: str, *, agent_id: str, reason: str, server_message: str = "",
        holder_alive: bool | None = None, retry_remaining: float = 0.0,
    ) -> None:
        super().__init__(
            message, agent_id=agent_id,
            code="AGENT_CONFLICT" if reason == "retrying" else "AGENT_CONFLICT_FATAL",
            server_message=server_message,
        )
        self.reason = reason
        self.holder_alive = holder_alive
        self.retry_remaining = retry_remaining


class ServerAtCapacityError(RegistrationError):
    """The platform has no free client slot for another agent."""

    def __init__(
        self, message: str, *, agent_id: str, used: int | None, limit: int | None,
        server_message: str = "",
    ) -> None:
        super().__init__(
            message, agent_id=agent_id, code="SERVER_AT_CAPACITY", server_message=server_message,
        )
        self.used = used
        self.limit = limit


class RequestRejectedError(ServerError):
    """A history or prompt request was answered with an error."""


class CallFailedError(ServerError):
    """An outbound call ended before it was answered (busy, no-answer, failed, canceled)."""

    def __init__(self, message: str, *, reason: str, call_id: str = "") -> None:
        super().__init__(message, code=reason)
        self.reason = reason
        self.call_id = call_id


class RestError(ServerError):
    """The platform refused a REST request, or answered it with something that is not the
    documented shape; `status` is the HTTP status."""

    def __init__(self, message: str, *, status: int, server_message: str = "") -> None:
        super().__init__(message, code=str(status), server_message=server_message)
        self.status = status


class NotFoundError(RestError):
    """The agent, call, knowledge base or document named in the request does not exist."""


class UpgradeRequiredError(RestError):
    """The feature is not on the account's plan (HTTP 402); upgrade the plan to use it."""


class EventsDroppedError(VoiceSyncError):
    """Events were dropped because a call's handlers fell more than the backlog behind.

    `count` is how many since the previous report (reports come at most once a
    second); `total` is how many in the client's life.
    """

    def __init__(self, message: str, *, count: int, total: int) -> None:
        super().__init__(message)
        self.count = count
        self.total = total


class RequestTimeout(VoiceSyncError, TimeoutError):
    """An acknowledgement from the platform did not arrive within the timeout."""


class ReplyStreamClosedError(VoiceSyncError):
    """write() was called on a reply stream that has already ended."""


class TurnRequiredError(VoiceSyncError, RuntimeError):
    """`call.reply()`/`reply_stream()` without a turn, outside a handler of that call."""


class CallEndedError(VoiceSyncError):
    """A request that waits for the platform's answer was made on a call that has ended."""

    def __init__(self, message: str, *, call_id: str, reason: str | None) -> None:
        super().__init__(message)
        self.call_id = call_id
        self.reason = reason


class MissingDependencyError(VoiceSyncError, ImportError):
    """An optional extra is not installed; the message is the pip command that adds it.

    Also an ImportError, so ``except ImportError`` around an optional import keeps working.
    `name` is the missing package, `extra` the voicesync extra that brings it.
    """

    def __init__(self, feature: str, *, name: str, extra: str) -> None:
        super().__init__(f'{feature} needs the {name!r} package, which is not installed: '
                         f'pip install "voicesync[{extra}]"', name=name)
        self.extra = extra


__all__ += ["MissingDependencyError"]  # appended here so the list above stays as it is
