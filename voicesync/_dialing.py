"""Outbound calls: `Agent.dial`, `Agent.bridge`, and matching the platform's answers.

The platform's `call.dialing` carries no request id: concurrent dials are told apart by
the order of those replies and the number (docs/protocol.md §3.9). A bridge (a voice call
to another agent) may get no `call.dialing` at all: it is settled by the first outbound
`call.started` no dial claims, or by the `call.ended` of a call this client never had.
`Dialing` is mixed into `Agent`.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from voicesync import _codec
from voicesync._channels import check_phone
from voicesync.call import Call
from voicesync.errors import (
    CallFailedError,
    ConfigurationError,
    RegistrationError,
    RequestTimeout,
    VoiceSyncError,
)

if TYPE_CHECKING:
    from voicesync._uplink import Uplink

POLL = 0.05  # how often a blocked dial()/wait_ready() looks for a conflict or a dead client


class PendingDial:
    """One outstanding `dial()` or `bridge()`, matched by `call.dialing` order and number
    (no request id); a bridge's `to` is the target agent."""

    def __init__(self, to: str, *, bridge: bool = False) -> None:
        self.to = to
        self.bridge = bridge
        self.call_id: str | None = None
        self.call: Call | None = None
        self.error: VoiceSyncError | None = None
        self.done = threading.Event()


class Dialing:
    """Placing outbound calls and settling them from the reader; mixed into `Agent`."""

    id: str
    wire_id: str
    _lock: threading.RLock
    _channels: dict[str, dict[str, Any]]
    _queue: collections.deque[dict[str, Any]]
    _dials: list[PendingDial]
    _failed: RegistrationError | None
    _ready: threading.Event

    if TYPE_CHECKING:
        def _require_uplink(self) -> Uplink: ...
        def _send(self, frame: Mapping[str, Any]) -> bool: ...
        def _raise_if_conflict(self, *, final: bool = False) -> None: ...

    def dial(
        self, to: str, *, from_: str | None = None, greeting: str | None = None,
        metadata: Mapping[str, Any] | None = None, config: Mapping[str, Any] | None = None,
        detect_turn_end: bool = False, timeout: float = 30.0,
    ) -> Call:
        """Place an outbound call and block until it is answered; returns the Call.

        `from_` defaults to the agent's only phone number. Concurrent dials are told
        apart by the order of the platform's `call.dialing` replies and the number.
        Raises CallFailedError (busy, no-answer...) or RequestTimeout.
        """
        check_phone(to)
        if from_ is None:
            phones = [f["ref"] for f in self._channels.values() if f.get("type") == "phone"]
            if len(phones) != 1:
                raise ConfigurationError(
                    f"dial() needs from_=: agent {self.id!r} has {len(phones)} phone numbers")
            from_ = phones[0]
        frame = _codec.command(
            "call.dial", agent_id=self.wire_id, to=to, from_=from_, greeting=greeting,
            metadata=dict(metadata) if metadata else None,
            config=dict(config) if config else None, detect_turn_end=detect_turn_end or None)
        return self._place(PendingDial(to), frame, timeout, f"agent {self.id!r}: dial({to!r})")

    def bridge(
        self, target: str, *, greeting: str | None = None, detect_turn_end: bool = True,
        config: Mapping[str, Any] | None = None, media: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None, timeout: float = 30.0,
    ) -> Call:
        """Call another agent by voice (``call.bridge``) and block until it answers.

        `target` is the other agent's id, registered in the same organisation (by this
        or any other process). The platform wires the two calls' audio together: what this
        agent says (`call.say`, replies) is the target's caller speech, and the target's
        words arrive here as caller turns. `detect_turn_end` (default True) gives this
        side `turn.end` events; `config` overrides this side's session (voice, STT,
        language); `media` asks for live listening or recording (``{"live": True}``).
        Returns this side's Call (outbound). Raises CallFailedError when the platform
        ends it first (target offline...) or RequestTimeout. Any thread but the reader.
        """
        if not target:
            raise ConfigurationError("bridge() needs the target agent's id")
        frame = _codec.command(
            "call.bridge", agent_id=self.wire_id, target=target, greeting=greeting,
            config=dict(config) if config else None, media=dict(media) if media else None,
            metadata=dict(metadata) if metadata else None,
            detect_turn_end=bool(detect_turn_end))
        return self._place(PendingDial(target, bridge=True), frame, timeout,
                           f"agent {self.id!r}: bridge({target!r})")

    def _place(self, pending: PendingDial, frame: dict[str, Any], timeout: float,
               what: str) -> Call:
        """Send a dial or bridge frame and wait for its call (or its failure)."""
        self._require_uplink().require_connection(what)
        self._raise_if_conflict()
        if self._failed is not None:
            raise self._failed
        with self._lock:
            self._dials.append(pending)
        try:
            self._send(frame)
            self._await_dial(pending, timeout, what)
        finally:
            with self._lock:
                if pending in self._dials:
                    self._dials.remove(pending)
                if not pending.done.is_set() and frame in self._queue:
                    self._queue.remove(frame)  # never sent: it must not be placed later
        if pending.error is not None:
            raise pending.error
        assert pending.call is not None
        return pending.call

    def _await_dial(self, pending: PendingDial, timeout: float, what: str) -> None:
        """Wait for the dial's outcome; fail as soon as the client or the agent cannot get one."""
        uplink = self._require_uplink()
        deadline = time.monotonic() + timeout
        while not pending.done.wait(min(POLL, max(0.0, deadline - time.monotonic()))):
            uplink.require_connection(what)
            if pending.call_id is None:  # not yet placed: registration still matters
                if self._failed is not None:
                    raise self._failed
                self._raise_if_conflict()
            if time.monotonic() >= deadline:
                self._raise_if_conflict(final=True)
                placed = (f"call.dialing for it (call {pending.call_id}), then nothing"
                          if pending.call_id else "no answer to it" + (
                              "" if self._ready.is_set() else
                              " (the agent is not registered yet: the dial is queued)"))
                raise RequestTimeout(
                    f"{what}: the call to {pending.to} was not answered within {timeout:g} s "
                    f"(waited for call.started); last seen: {placed}; {uplink.link_state()}")

    def _dial_bound(self, frame: Mapping[str, Any]) -> None:
        """`call.dialing`: bind the oldest unbound dial to this number (reader thread)."""
        to, call_id = _codec.text_field(frame, "to"), _codec.text_field(frame, "call_id")
        with self._lock:
            for pending in self._dials:
                if pending.call_id is None and pending.to == to:
                    pending.call_id = call_id
                    return

    def _dial_settled(self, call_id: str, to: str, call: Call | None, reason: str) -> None:
        with self._lock:
            match = next((d for d in self._dials if d.call_id == call_id), None)
            unbound = [d for d in self._dials if d.call_id is None]
            if match is None:
                match = next((d for d in unbound if d.to == to), None)
            if match is None and (call is None or call.direction == "outbound"):
                match = _bridge_for(unbound, to, started=call is not None)
        if match is None or match.done.is_set():
            return
        if call is not None:
            match.call = call
        else:
            match.error = CallFailedError(
                f"the call to {match.to} ended before it was answered: {reason}"
                + (" (is that agent online in this organisation?)" if match.bridge else ""),
                reason=reason, call_id=call_id)
        match.done.set()


def _bridge_for(unbound: list[PendingDial], to: str, *, started: bool) -> PendingDial | None:
    """The waiting bridge a frame answers: one whose target is `to` (any spelling), else,
    as the platform's answer need not name its target, the oldest one: for an outbound
    `call.started`, or a `call.ended` that names no one else."""
    bridges = [d for d in unbound if d.bridge]
    named = next((d for d in bridges if _codec.slugify(d.to) == _codec.slugify(to)), None)
    return named or (bridges[0] if bridges and (started or not to) else None)
