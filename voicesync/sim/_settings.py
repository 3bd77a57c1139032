"""The simulator's behaviour knobs, which tests flip between calls (plain attributes)."""

from __future__ import annotations

from typing import Literal

HandshakeMode = Literal["ok", "reject", "silent"]
ConflictMode = Literal["conflict", "fatal", "displace"]
DialOutcome = Literal["answered", "busy", "no-answer", "failed", "canceled"]


class SimSettings:
    """Every knob is read when it is needed, so changing one affects what happens next.

    Durations are in simulated seconds (scaled by `time_scale`) unless named otherwise.
    """

    def __init__(self, *, words_per_second: float = 2.5, api_key: str | None = None) -> None:
        #: TTS pace of bot messages, in real words per second.
        self.words_per_second = words_per_second
        #: None accepts any non-empty key; else `connect` must carry exactly this key.
        self.api_key = api_key
        #: "ok"; "reject" refuses every key; "silent" never answers `connect`.
        self.handshake: HandshakeMode = "ok"
        #: What `agent.create` for an id held by another live connection gets.
        self.conflict: ConflictMode = "conflict"
        #: `retry_after_s` sent with AGENT_CONFLICT (omitted when None).
        self.conflict_retry_after_s: float | None = None
        #: Maximum registered agents across the simulator (None: unlimited).
        self.capacity: int | None = None
        #: Outcome of `call.dial` unless `dial_script[to]` says otherwise.
        self.dial_outcome: DialOutcome = "answered"
        self.dial_script: dict[str, DialOutcome] = {}
        #: Ring time before a dialled number answers or fails.
        self.dial_delay = 0.0
        #: A ringing call is auto-accepted after this long (§3.7).
        self.ring_timeout = 5.0
        #: How long a server-LLM turn waits for `llm.tool_result`.
        self.tool_timeout = 30.0
        #: Whether user turns include `eager.turn` (§9.3).
        self.eager_turns = True
        self.org_id = "org_sim"
        #: The organisation's numbers listed by `GET /api/sdk/phone-numbers`.
        self.phone_numbers: list[str] = ["+15550100001", "+15550100002"]
