"""voicesync: a synchronous, thread-based SDK for realtime voice agents."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from voicesync._feed import EventFeed as EventFeed
from voicesync._stats import ClientStats as ClientStats
from voicesync._version import __version__ as __version__
from voicesync.agent import Agent as Agent
from voicesync.call import (
    Call as Call,
    Reply as Reply,
    RingingCall as RingingCall,
    SayHandle as SayHandle,
)
from voicesync.client import Client as Client
from voicesync.errors import (
    AgentConflictError as AgentConflictError,
    AuthenticationError as AuthenticationError,
    CallEndedError as CallEndedError,
    CallFailedError as CallFailedError,
    ConfigurationError as ConfigurationError,
    ConnectError as ConnectError,
    ConnectionClosedError as ConnectionClosedError,
    ConnectTimeout as ConnectTimeout,
    EventsDroppedError as EventsDroppedError,
    MissingDependencyError as MissingDependencyError,
    NotConnectedError as NotConnectedError,
    ProtocolError as ProtocolError,
    RegistrationError as RegistrationError,
    ReplyStreamClosedError as ReplyStreamClosedError,
    RequestRejectedError as RequestRejectedError,
    RequestTimeout as RequestTimeout,
    ServerAtCapacityError as ServerAtCapacityError,
    ServerError as ServerError,
    TurnRequiredError as TurnRequiredError,
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
from voicesync.lines import (
    Line as Line,
    LineTranscriptEntry as LineTranscriptEntry,
    ListenResult as ListenResult,
    RouteResult as RouteResult,
)
from voicesync.reply import AbortFlag as AbortFlag, ReplyStream as ReplyStream
from voicesync.skills import Skill as Skill, skill as skill
from voicesync.tools import Tool as Tool, ToolError as ToolError, tool as tool

if TYPE_CHECKING:
    from voicesync import llm as llm, local as local, rest as rest, returning as returning
    from voicesync.llm import ProviderError as ProviderError

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
    "CallEndedError",
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
    "EventFeed",
    "EventName",
    "EventsDroppedError",
    "History",
    "HistoryMessage",
    "HistoryStore",
    "JSONFileStore",
    "Line",
    "LineTranscriptEntry",
    "ListenResult",
    "MemoryStore",
    "MessageConfirmed",
    "MissingDependencyError",
    "NotConnectedError",
    "ProtocolError",
    "ProviderError",
    "RegistrationError",
    "Reply",
    "ReplyRejected",
    "ReplyStream",
    "ReplyStreamClosedError",
    "RequestRejectedError",
    "RequestTimeout",
    "RingingCall",
    "RouteResult",
    "SayHandle",
    "ServerAtCapacityError",
    "ServerError",
    "Skill",
    "SpeechEvent",
    "Tool",
    "ToolCall",
    "ToolCallRequest",
    "ToolError",
    "Turn",
    "TurnRequiredError",
    "TurnSignal",
    "UserMessage",
    "UserSpeaking",
    "VoiceSyncError",
    "__version__",
    "llm",
    "local",
    "rest",
    "returning",
    "skill",
    "tool",
]

# Loaded on first use: most programs never touch them, and `voicesync.local` (the examples'
# helper) must not load with the library. `rest` and `returning` load with the first
# Client or on first use (issue 14: `import voicesync` within 80 ms).
_LAZY = ("llm", "local", "rest", "returning", "ProviderError")


def _to_the_door(obj: object) -> None:
    """Tracebacks and reprs name the public door, not the private module."""
    if isinstance(obj, type) and obj.__module__.startswith("voicesync."):
        obj.__module__ = __name__


def __getattr__(name: str) -> Any:
    value: Any
    if name == "llm":  # `import a.b as c`, not `from a import b`, which would come back here
        import voicesync.llm as value
    elif name == "local":
        import voicesync.local as value
    elif name == "rest":
        import voicesync.rest as value
    elif name == "returning":
        import voicesync.returning as value
    elif name == "ProviderError":
        from voicesync.llm import ProviderError

        value = ProviderError
    else:
        raise AttributeError(f"module 'voicesync' has no attribute {name!r}")
    _to_the_door(value)
    globals()[name] = value  # later lookups skip this function
    return value


for _name in __all__:
    if _name not in _LAZY:
        _to_the_door(globals()[_name])
del _name
