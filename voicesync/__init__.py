"""voicesync: a synchronous, thread-based SDK for realtime voice agents."""

from __future__ import annotations

import logging

from voicesync._version import __version__ as __version__
from voicesync.agent import Agent as Agent
from voicesync.call import Call as Call
from voicesync.call import RingingCall as RingingCall
from voicesync.call import SayHandle as SayHandle
from voicesync.client import Client as Client
from voicesync.client import ClientStats as ClientStats
from voicesync.errors import (
    AgentConflictError as AgentConflictError,
)
from voicesync.errors import (
    AuthenticationError as AuthenticationError,
)
from voicesync.errors import (
    CallFailedError as CallFailedError,
)
from voicesync.errors import (
    ConfigurationError as ConfigurationError,
)
from voicesync.errors import (
    ConnectError as ConnectError,
)
from voicesync.errors import (
    ConnectionClosedError as ConnectionClosedError,
)
from voicesync.errors import (
    ConnectTimeout as ConnectTimeout,
)
from voicesync.errors import (
    ProtocolError as ProtocolError,
)
from voicesync.errors import (
    RegistrationError as RegistrationError,
)
from voicesync.errors import (
    ReplyStreamClosedError as ReplyStreamClosedError,
)
from voicesync.errors import (
    RequestRejectedError as RequestRejectedError,
)
from voicesync.errors import (
    RequestTimeout as RequestTimeout,
)
from voicesync.errors import (
    ServerAtCapacityError as ServerAtCapacityError,
)
from voicesync.errors import (
    ServerError as ServerError,
)
from voicesync.errors import (
    VoiceSyncError as VoiceSyncError,
)
from voicesync.events import (
    BotFinished as BotFinished,
)
from voicesync.events import (
    BotInterrupted as BotInterrupted,
)
from voicesync.events import (
    BotSpeaking as BotSpeaking,
)
from voicesync.events import (
    BotWord as BotWord,
)
from voicesync.events import (
    ChannelEvent as ChannelEvent,
)
from voicesync.events import (
    DTMFReceived as DTMFReceived,
)
from voicesync.events import (
    Event as Event,
)
from voicesync.events import (
    EventName as EventName,
)
from voicesync.events import (
    MessageConfirmed as MessageConfirmed,
)
from voicesync.events import (
    ReplyRejected as ReplyRejected,
)
from voicesync.events import (
    SpeechEvent as SpeechEvent,
)
from voicesync.events import (
    ToolCall as ToolCall,
)
from voicesync.events import (
    ToolCallRequest as ToolCallRequest,
)
from voicesync.events import (
    Turn as Turn,
)
from voicesync.events import (
    TurnSignal as TurnSignal,
)
from voicesync.events import (
    UserMessage as UserMessage,
)
from voicesync.events import (
    UserSpeaking as UserSpeaking,
)
from voicesync.history import (
    History as History,
)
from voicesync.history import (
    HistoryMessage as HistoryMessage,
)
from voicesync.history import (
    HistoryStore as HistoryStore,
)
from voicesync.history import (
    JSONFileStore as JSONFileStore,
)
from voicesync.history import (
    MemoryStore as MemoryStore,
)
from voicesync.reply import AbortFlag as AbortFlag
from voicesync.reply import ReplyStream as ReplyStream
from voicesync.tools import Tool as Tool
from voicesync.tools import tool as tool

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "AbortFlag",
    "Agent",
    "AgentConflictError",
    "AuthenticationError",
    "BotFinished",
    "BotInterrupted",
    "BotSpeaking",
    "BotWord",
    "Call",
    "CallFailedError",
    "ChannelEvent",
    "Client",
    "ClientStats",
    "ConfigurationError",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionClosedError",
    "DTMFReceived",
    "Event",
    "EventName",
    "History",
    "HistoryMessage",
    "HistoryStore",
    "JSONFileStore",
    "MemoryStore",
    "MessageConfirmed",
    "ProtocolError",
    "RegistrationError",
    "ReplyRejected",
    "ReplyStream",
    "ReplyStreamClosedError",
    "RequestRejectedError",
    "RequestTimeout",
    "RingingCall",
    "SayHandle",
    "ServerAtCapacityError",
    "ServerError",
    "SpeechEvent",
    "Tool",
    "ToolCall",
    "ToolCallRequest",
    "Turn",
    "TurnSignal",
    "UserMessage",
    "UserSpeaking",
    "VoiceSyncError",
    "__version__",
    "tool",
]

# Tracebacks and reprs name the public door, not the private module.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and _obj.__module__.startswith("voicesync."):
        _obj.__module__ = __name__
del _name, _obj
