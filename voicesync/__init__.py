"""voicesync: a synchronous, thread-based SDK for realtime voice agents."""

from __future__ import annotations

import logging

from voicesync._version import __version__ as __version__
from voicesync.errors import (
    AgentConflictError as AgentConflictError,
    AuthenticationError as AuthenticationError,
    CallFailedError as CallFailedError,
    ConfigurationError as ConfigurationError,
    ConnectError as ConnectError,
    ConnectionClosedError as ConnectionClosedError,
    ConnectTimeout as ConnectTimeout,
    ProtocolError as ProtocolError,
    RegistrationError as RegistrationError,
    ReplyStreamClosedError as ReplyStreamClosedError,
    RequestRejectedError as RequestRejectedError,
    RequestTimeout as RequestTimeout,
    ServerAtCapacityError as ServerAtCapacityError,
    ServerError as ServerError,
    VoiceSyncError as VoiceSyncError,
)

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "AgentConflictError",
    "AuthenticationError",
    "CallFailedError",
    "ConfigurationError",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionClosedError",
    "ProtocolError",
    "RegistrationError",
    "ReplyStreamClosedError",
    "RequestRejectedError",
    "RequestTimeout",
    "ServerAtCapacityError",
    "ServerError",
    "VoiceSyncError",
    "__version__",
]
