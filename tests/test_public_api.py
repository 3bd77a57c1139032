"""The door: public names are pinned, and the tree keeps its rules."""

from __future__ import annotations

import ast
from pathlib import Path

import voicesync

PACKAGE = Path(voicesync.__file__).parent

PUBLIC = {
    "AbortFlag", "Agent", "AgentConflictError", "AuthenticationError", "BotFinished",
    "BotInterrupted", "BotSpeaking", "BotWord", "Call", "CallEndedError", "CallFailedError",
    "ChannelEvent",
    "Client", "ClientStats", "ConfigurationError", "ConnectError", "ConnectTimeout",
    "ConnectionClosedError", "DTMFReceived", "Event", "EventFeed", "EventsDroppedError",
    "EventName",
    "History", "HistoryMessage",
    "HistoryStore", "JSONFileStore", "MemoryStore", "MessageConfirmed", "NotConnectedError",
    "ProtocolError",
    "RegistrationError", "Reply", "ReplyRejected", "ReplyStream", "ReplyStreamClosedError",
    "RequestRejectedError", "RequestTimeout", "RingingCall", "SayHandle",
    "ServerAtCapacityError", "ServerError", "SpeechEvent", "Tool", "ToolCall",
    "ToolCallRequest", "ToolError", "Turn", "TurnRequiredError", "TurnSignal", "UserMessage",
    "UserSpeaking",
    "VoiceSyncError",
    "__version__", "llm", "local", "rest", "returning", "tool", "ProviderError",
    "MissingDependencyError", "Line", "LineTranscriptEntry", "ListenResult", "RouteResult",
    "Skill", "skill",
}


def test_public_names_are_pinned() -> None:
    assert set(voicesync.__all__) == PUBLIC
    for name in voicesync.__all__:
        assert hasattr(voicesync, name), name


def test_public_classes_belong_to_the_door() -> None:
    assert voicesync.Client.__module__ == "voicesync"
    assert repr(voicesync.ReplyStream).startswith("<class 'voicesync.ReplyStream")


def test_every_error_has_one_root() -> None:
    for name in voicesync.__all__:
        obj = getattr(voicesync, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, voicesync.VoiceSyncError), name


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def test_every_module_opens_with_a_docstring() -> None:
    for path in _modules():
        tree = ast.parse(path.read_text())
        doc = ast.get_docstring(tree)
        assert doc and doc.strip(), f"{path} has no module docstring"


def test_no_print_in_library_code_outside_the_clis() -> None:
    allowed = {"__main__.py", "console.py", "demo.py"}
    for path in _modules():
        if path.name in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                raise AssertionError(f"print() in {path}:{node.lineno}")


def test_threads_started_by_the_library_are_named() -> None:
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "Thread"
                    and getattr(node.func.value, "id", None) == "threading"):
                names = [k for k in node.keywords if k.arg == "name"]
                assert names, f"unnamed thread in {path}:{node.lineno}"
