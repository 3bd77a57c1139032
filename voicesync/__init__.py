"""voicesync: a synchronous, thread-based SDK for realtime voice agents."""

from __future__ import annotations

import logging

from voicesync import llm as llm, local as local
from voicesync._stats import ClientStats as ClientStats
from voicesync._version import __version__ as __version__
from voicesync.agent import Agent as Agent
from voicesync.call import Call as Call, RingingCall as RingingCall, SayHandle as SayHandle
from voicesync.client import Client as Client
from voicesync.errors import (
    AgentConflictError as AgentConflictError,
    AuthenticationError as AuthenticationError,
    CallFailedError as CallFailedError,
    ConfigurationError as ConfigurationError,
    ConnectError as ConnectError,
    ConnectionClosedError as ConnectionClosedError,
    ConnectTimeout as ConnectTimeout,
    EventsDroppedError as EventsDroppedError,
    ProtocolError as ProtocolError,
    RegistrationError as RegistrationError,
    ReplyStreamClosedError as ReplyStreamClosedError,
    RequestRejectedError as RequestRejectedError,
    RequestTimeout as RequestTimeout,
    ServerAtCapacityError as ServerAtCapacityError,
    ServerError as ServerError,
    VoiceSyncError as VoiceSyncError,
)
from voicesync.events import (
    BotFinished as BotFinished,
    BotInterrupted as BotInterrupted,
    BotSpeaking as BotSpeaking,
    BotWord as BotWord,
    ChannelEvent as ChannelEvent,
    DTMFReceived as DTMFReceived,
    Event as Event,
    EventName as EventName,
    MessageConfirmed as MessageConfirmed,
    ReplyRejected as ReplyRejected,
    SpeechEvent as SpeechEvent,
    ToolCall as ToolCall,
    ToolCallRequest as ToolCallRequest,
    Turn as Turn,
    TurnSignal as TurnSignal,
    UserMessage as UserMessage,
    UserSpeaking as UserSpeaking,
)
from voicesync.history import (
    History as History,
    HistoryMessage as HistoryMessage,
    HistoryStore as HistoryStore,
    JSONFileStore as JSONFileStore,
    MemoryStore as MemoryStore,
)
from voicesync.llm import ProviderError as ProviderError
from voicesync.reply import AbortFlag as AbortFlag, ReplyStream as ReplyStream
from voicesync.tools import Tool as Tool, tool as tool

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
    "EventsDroppedError",
    "History",
    "HistoryMessage",
    "HistoryStore",
    "JSONFileStore",
    "MemoryStore",
    "MessageConfirmed",
    "ProtocolError",
    "ProviderError",
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
    "llm",
    "local",
    "tool",
]

# Tracebacks and reprs name the public door, not the private module.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and _obj.__module__.startswith("voicesync."):
        _obj.__module__ = __name__
del _name, _obj
