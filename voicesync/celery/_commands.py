"""Call commands from a worker: `RemoteCall` sends them up with the reply's chunks, and the
socket process runs them on the real `Call` (`run`), in the order the task issued them.

Only fire-and-forget commands travel (say, hangup, forward, DTMF, hold, mute, skills,
session settings, cancel/clear): each is one frame the socket process sends on the call's
connection. Requests that wait for the platform's answer (``get_history``, ``add_context``
...) do not; run those in the socket process.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from voicesync.celery._wire import CallInfo

if TYPE_CHECKING:
    from voicesync.call import Call

logger = logging.getLogger(__name__)

COMMANDS = frozenset({"say", "hangup", "forward", "send_dtmf", "hold", "unhold", "mute",
                      "unmute", "cancel", "clear", "load_skill", "unload_skill", "update"})

Sender = Callable[[str, Mapping[str, Any]], bool]


def _unbound(name: str, kwargs: Mapping[str, Any]) -> bool:
    return False


@dataclass(frozen=True)
class RemoteCall(CallInfo):
    """The call a reply task answers: the `CallInfo` snapshot taken at hand-off, plus its
    commands. Each command goes to the socket process behind the reply's chunks so far and
    runs there on the live `Call`; it returns True once sent, False if the reply was
    already aborted or ended (a superseded reply does not hang up or transfer the call).
    Any thread of the worker.
    """

    _send: Sender = field(default=_unbound, compare=False, repr=False)

    def say(self, text: str, *, add_to_history: bool = False) -> bool:
        """Speak `text` as a standalone message after what the reply has said."""
        return self._send("say", {"text": text, "add_to_history": add_to_history})

    def hangup(self) -> bool:
        return self._send("hangup", {})

    def forward(self, to: str, *, message: str = "", announce: bool = False) -> bool:
        """Transfer the call to `to` (a phone number or SIP URI)."""
        return self._send("forward", {"to": to, "message": message, "announce": announce})

    def send_dtmf(self, digits: str) -> bool:
        return self._send("send_dtmf", {"digits": digits})

    def hold(self) -> bool:
        return self._send("hold", {})

    def unhold(self) -> bool:
        return self._send("unhold", {})

    def mute(self) -> bool:
        return self._send("mute", {})

    def unmute(self) -> bool:
        return self._send("unmute", {})

    def cancel(self, message_id: str | None = None) -> bool:
        return self._send("cancel", {"message_id": message_id})

    def clear(self) -> bool:
        return self._send("clear", {})

    def load_skill(self, name: str) -> bool:
        return self._send("load_skill", {"name": name})

    def unload_skill(self, name: str) -> bool:
        return self._send("unload_skill", {"name": name})

    def update(self, **options: Any) -> bool:
        """Change the call's session settings (``session.configure``)."""
        return self._send("update", options)

    @classmethod
    def bind(cls, info: CallInfo, send: Sender) -> RemoteCall:
        snapshot = {f.name: getattr(info, f.name) for f in dataclasses.fields(CallInfo)}
        return cls(**snapshot, _send=send)


def encode(name: str, kwargs: Mapping[str, Any]) -> str:
    return json.dumps({"name": name, "kwargs": dict(kwargs)})


def run(call: Call, text: str) -> None:
    """Run one command frame's text on the real call (the relay thread)."""
    data = json.loads(text)
    name, kwargs = str(data.get("name")), data.get("kwargs") or {}
    if name not in COMMANDS:
        logger.warning("call %s: a worker sent an unknown command %r; ignored", call.id, name)
        return
    getattr(call, name)(**kwargs)


def local(call: Call) -> Sender:
    """A sender that runs commands on `call` at once (the in-process fallback)."""
    return lambda name, kwargs: bool(getattr(call, name)(**kwargs)) if name in COMMANDS else False
