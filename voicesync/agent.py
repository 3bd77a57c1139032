"""Agent: one registered assistant; its config, channels, calls, and the subclassing hooks."""

from __future__ import annotations

import collections
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from voicesync import _backoff, _codec
from voicesync._backoff import ConflictEpisode
from voicesync._listeners import Listeners, Subscribable, check_event_name, check_signature
from voicesync.call import Call
from voicesync.errors import (
    AgentConflictError,
    CallFailedError,
    ConfigurationError,
    RegistrationError,
    RequestTimeout,
    VoiceSyncError,
)

if TYPE_CHECKING:
    from voicesync.client import Client
    from voicesync.events import Turn
    from voicesync.history import History, HistoryStore
    from voicesync.rest import Channel, Scope

logger = logging.getLogger(__name__)

_E164_STRIP = re.compile(r"[\s\-()]")
_E164 = re.compile(r"\+\d{7,15}")
MAX_QUEUED = 1000
_POLL = 0.05  # how often a blocked dial()/wait_ready() looks for a conflict or a dead client


def check_phone(number: str) -> None:
    """Raise ConfigurationError unless `number` is E.164 (or a ``sip:`` URI), §3.7."""
    if number.startswith("sip:"):
        return
    normal = _E164_STRIP.sub("", number)
    if not normal.startswith("+"):
        normal = "+" + normal
    if not _E164.fullmatch(normal):
        raise ConfigurationError(
            f"invalid phone number {number!r}: use E.164, a '+' and 7-15 digits, "
            "e.g. '+13186330963'")


class _Dial:
    """One outstanding `dial()`, matched by `call.dialing` order and number (no request id)."""

    def __init__(self, to: str) -> None:
        self.to = to
        self.call_id: str | None = None
        self.call: Call | None = None
        self.error: VoiceSyncError | None = None
        self.done = threading.Event()


class Agent(Subscribable):
    """A voice agent registered on a Client's socket.

    Create one with ``client.agent("support", voice=..., language=...)``, or subclass it::

        class Support(voicesync.Agent):
            id = "support"
            greeting = "Hi! How can I help?"
            def on_turn(self, turn, call, history):
                call.reply("You said " + turn.text)

        Support().run()

    Config keywords are snake_case agent options (docs/protocol.md §3.1): voice, language,
    flash, stt, interruption, llm, prompt, prompt_vars, greeting, greeting_in_chat,
    memory, timezone, preparing, raw_prompt, tools, skills, session_limits, config,
    knowledge_base, mode, media. `greeting` (keyword or class attribute) is a text or a
    per-language map the platform speaks, or a callable(call) -> str that voicesync speaks
    with `call.say` when the call starts. Every method may be called from any thread.
    """

    _scope = "agent"
    id: str  # set by client.agent(id), the constructor, or a subclass attribute
    instructions: ClassVar[str | None] = None
    greeting: ClassVar[str | Callable[[Call], str] | None] = None
    model: ClassVar[str | None] = None
    turn_event: ClassVar[str] = "turn.end"
    tools: ClassVar[Iterable[Any]] = ()
    history_store: HistoryStore | None = None

    def __init__(
        self, id: str | None = None, *, client: Client | None = None,
        phone: str | None = None, phones: Iterable[str] = (), ringing: bool = False,
        allowed_origins: Iterable[str] | None = None, history_store: HistoryStore | None = None,
        **config: Any,
    ) -> None:
        agent_id = id or getattr(type(self), "id", None)
        if not agent_id:
            raise ConfigurationError(
                "an agent needs an id: client.agent('support', ...) or a class attribute id")
        _codec.check_config(config)
        self.id = agent_id
        self.wire_id = agent_id
        self.slug = _codec.slugify(agent_id)
        if history_store is not None:
            self.history_store = history_store
        self._client: Client | None = None
        self._lock = threading.RLock()
        self._listeners = Listeners()
        self._greeting_fn: Callable[[Call], Any] | None = None  # a callable greeting
        self._config: dict[str, Any] = self._class_config(config)
        self._allowed_origins = list(allowed_origins) if allowed_origins else None
        self._channels: dict[str, dict[str, Any]] = {}
        self._dev_config: dict[str, Any] | None = None
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._calls: dict[str, Call] = {}
        self._dials: list[_Dial] = []
        self._ready = threading.Event()
        self._settled = threading.Event()  # ready, or registration failed for good
        self._failed: RegistrationError | None = None
        self.conflict: ConflictEpisode | None = None
        for number in ([phone] if phone else []) + list(phones):
            self.add_phone(number, ringing=ringing)
        if type(self).on_turn is not Agent.on_turn:
            self._listeners.add(self.turn_event, self._turn_hook)  # checked by the subclass
        self.on("call.started", self._greet)  # speaks only while the greeting is callable
        if client is not None:
            client.add_agent(self)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass's `on_turn` and `turn_event` are checked where the class is defined."""
        super().__init_subclass__(**kwargs)
        check_event_name(cls.turn_event, "agent")
        if cls.on_turn is not Agent.on_turn:
            check_signature(cls.on_turn, ("self", "turn", "call", "history"),
                            f"{cls.__name__}.on_turn")

    def _class_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        merged = dict(config)
        self._set_greeting(merged, type(self).greeting if "greeting" not in merged
                           else merged["greeting"])
        # Tools travel on agent.create only for a server-side model (`llm`); a client-side
        # model (OpenAIAgent...) runs them itself.
        tools = list(merged.get("tools") or ()) or self._declared_tools()
        if tools and merged.get("llm"):
            merged["tools"] = tools
        else:
            merged.pop("tools", None)
            self._local_tools = tools
        if merged.get("llm") and self.instructions and "prompt" not in merged:
            merged["prompt"] = self.instructions
        return merged

    def _set_greeting(self, config: dict[str, Any], greeting: Any) -> None:
        """A text (or per-language map) travels in the config and the platform speaks it;
        a callable stays here and is spoken with `call.say` on ``call.started`` (§3.1)."""
        config.pop("greeting", None)
        self._greeting_fn = greeting if callable(greeting) else None
        if greeting is not None and not callable(greeting):
            config["greeting"] = greeting

    def _declared_tools(self) -> list[Any]:
        found = list(type(self).tools) + list(getattr(self, "_local_tools", ()))
        for name in dir(type(self)):
            value = getattr(type(self), name, None)
            if type(value).__name__ == "Tool" and value not in found:
                found.append(getattr(self, name))
        return found

    # ------------------------------------------------------------------ subclass hooks

    def on_turn(self, turn: Turn, call: Call, history: History) -> None:
        """Override to answer each caller turn (runs on a handler thread, one per call)."""

    def _turn_hook(self, turn: Turn, call: Call) -> None:
        self.on_turn(turn, call, call.history)

    def _greet(self, call: Call) -> None:
        greet = self._greeting_fn
        text = greet(call) if greet is not None else None
        if text:
            call.say(str(text), add_to_history=True)

    def run(self, client: Client | None = None, *, timeout: float = 10.0) -> None:
        """Connect, register and serve calls until Ctrl-C or `client.close()`.

        Uses `client`, the client this agent was added to, or a new Client configured
        from the environment. Blocks the calling thread.
        """
        from voicesync.client import Client

        target = client or self._client or Client()
        if self._client is None:
            target.add_agent(self)
        with target:
            target.connect(timeout=timeout)
            self.wait_ready(timeout=timeout)
            target.run_forever()

    # ------------------------------------------------------------------ registration

    @property
    def client(self) -> Client | None:
        return self._client

    def _require_client(self) -> Client:
        if self._client is None:
            raise ConfigurationError(
                f"agent {self.id!r} is not attached to a client: use client.agent(...) or "
                "client.add_agent(agent)")
        return self._client

    def _attach(self, client: Client) -> None:
        if self._client is not None and self._client is not client:
            raise ConfigurationError(f"agent {self.id!r} already belongs to another client")
        self._client = client

    @property
    def ready(self) -> bool:
        """True while the platform has acknowledged this agent on the current connection."""
        return self._ready.is_set()

    @property
    def config(self) -> dict[str, Any]:
        """The agent's current config (a copy), as it will be re-sent after a reconnect."""
        with self._lock:
            return dict(self._config)

    def wait_ready(self, timeout: float | None = 10.0) -> None:
        """Block until `agent.created`/`agent.resumed`. Any thread but the reader.

        Raises at once NotConnectedError (the client is neither connected nor
        connecting), AgentConflictError (the id is held elsewhere; voicesync keeps
        retrying in the background) or the RegistrationError that ended registration;
        RequestTimeout after `timeout`.
        """
        what = f"the registration of agent {self.id!r}"
        client = self._require_client()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            client._require_connection(what)
            if self._failed is not None:
                raise self._failed
            self._raise_if_conflict()
            if self._ready.is_set():
                return
            remaining = _POLL if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                self._raise_if_conflict(final=True)
                raise RequestTimeout(
                    f"agent {self.id!r} was not acknowledged within {timeout:g} s "
                    f"(waited for agent.created); last seen: {client._link_state()}, and no "
                    "answer to agent.create")
            self._settled.wait(min(remaining, _POLL))

    def _raise_if_conflict(self, *, final: bool = False) -> None:
        """Raise AgentConflictError while another connection holds this id (§2.6).

        A holder the platform says is alive raises at once; a possibly stale one (the
        retry will likely win) only when the wait is over (`final`).
        """
        episode = self.conflict
        if episode is None or episode.attempt == 0:  # attempt 0: not yet fully recorded
            return
        if not (episode.holder_alive or final):
            return
        left = max(0.0, _backoff.CONFLICT_BUDGET - (time.monotonic() - episode.started_at))
        alive = "alive" if episode.holder_alive else "possibly stale"
        raise AgentConflictError(
            f"agent {self.id!r} is held by another connection (holder {alive}); voicesync "
            f"keeps retrying the registration for {left:.0f} s more. Stop the other process "
            "(a second worker or copy of this app?) or use another agent id",
            agent_id=self.id, reason="retrying", holder_alive=episode.holder_alive,
            retry_remaining=left)

    def create_frame(self) -> dict[str, Any]:
        with self._lock:
            return _codec.agent_create(self.wire_id, self._config, self._allowed_origins)

    def _send(self, frame: Mapping[str, Any]) -> bool:
        """Agent-scoped send: queued until the agent is acknowledged (§1.9)."""
        with self._lock:
            if not self._ready.is_set():
                if len(self._queue) >= MAX_QUEUED:
                    dropped = self._queue.popleft()
                    logger.warning("agent %s: send queue full, dropped oldest %s",
                                   self.id, dropped.get("event"))
                self._queue.append(dict(frame))
                return True
            return self._require_client()._send(frame)

    def _acknowledged(self) -> None:
        """On `agent.created`: re-send channels, flush the queue, mark ready (reader thread)."""
        client = self._require_client()
        with self._lock:
            self.conflict = None
            self._failed = None
            for channel in self._channels.values():
                client._send(channel)
            if self._dev_config is not None:
                client._send(self._dev_config)
            while self._queue:
                client._send(self._queue.popleft())
            self._ready.set()
            self._settled.set()

    def _unregistered(self) -> None:
        with self._lock:
            self._ready.clear()
            if self._failed is None:
                self._settled.clear()
            self.conflict = None

    def _fail(self, error: RegistrationError) -> None:
        with self._lock:
            self._failed = error
            self._ready.clear()
            self._settled.set()

    # ------------------------------------------------------------------ config & channels

    def update(self, **config: Any) -> bool:
        """Hot-reload agent defaults for future calls (``agent.configure``).

        The change is kept and re-sent with every re-registration after a reconnect.
        """
        _codec.check_config(config)
        if callable(config.get("greeting")):
            # The platform would keep speaking the old text greeting as well.
            raise ConfigurationError(
                "a callable greeting can only be given when the agent is created "
                "(client.agent(id, greeting=fn) or a class attribute); update() takes text")
        with self._lock:
            self._config.update(config)
            if "greeting" in config:
                self._set_greeting(self._config, config["greeting"])
        return self._send(_codec.agent_configure(self.wire_id, config))

    def add_phone(self, number: str, *, ringing: bool = False, **config: Any) -> bool:
        """Claim a phone number (E.164 or ``sip:``); ``ringing=True`` screens calls."""
        check_phone(number)
        _codec.check_config(config)
        return self._add_channel(number, _codec.channel_add(
            self.wire_id, "phone", number, config, ringing=ringing))

    def add_webrtc(self, **config: Any) -> bool:
        """Enable browser calls with per-channel config."""
        _codec.check_config(config)
        return self._add_channel("webrtc", _codec.channel_add(
            self.wire_id, "webrtc", None, config, ringing=False))

    def add_chat(self, **config: Any) -> bool:
        """Enable text chat sessions with per-channel config."""
        _codec.check_config(config)
        return self._add_channel("chat", _codec.channel_add(
            self.wire_id, "chat", None, config, ringing=False))

    def _add_channel(self, key: str, frame: dict[str, Any]) -> bool:
        with self._lock:
            self._channels[key] = frame
            if not self._ready.is_set():
                return True  # sent on acknowledgement
            return self._require_client()._send(frame)

    def configure_channel(self, ref: str, **config: Any) -> bool:
        """Change one channel's config (``channel.configure``)."""
        _codec.check_config(config)
        frame = _codec.command("channel.configure", agent_id=self.wire_id, ref=ref)
        frame.update(_codec.encode_config(config))
        return self._send(frame)

    def route_callers(self, callers: Iterable[str]) -> bool:
        """Development routing: send these callers' calls to this process (``dev.config``).

        Re-sent after every re-registration, like the channels.
        """
        frame = {"event": "dev.config", "callers": list(callers)}
        with self._lock:
            self._dev_config = frame
            if not self._ready.is_set():
                return True
            return self._require_client()._send(frame)

    def pause(self, *, session_id: str | None = None, contact: str | None = None) -> bool:
        """Human takeover: stop AI replies for a session, a contact, or (neither) all."""
        return self._send(_codec.command("session.pause", agent_id=self.wire_id,
                                         session_id=session_id, contact=contact))

    def resume(self, *, session_id: str | None = None, contact: str | None = None) -> bool:
        """Hand a paused session (or contact, or everything) back to the AI."""
        return self._send(_codec.command("session.resume", agent_id=self.wire_id,
                                         session_id=session_id, contact=contact))

    def send_message(self, text: str, *, session_id: str | None = None,
                     contact: str | None = None) -> bool:
        """Send a message as a human operator (``session.send``)."""
        return self._send(_codec.command("session.send", agent_id=self.wire_id,
                                         session_id=session_id, contact=contact, text=text))

    def remove_channel(self, ref: str) -> bool:
        """Release a channel: a phone number, ``"webrtc"`` or ``"chat"``."""
        with self._lock:
            channel = self._channels.pop(ref, None)
        kind = channel.get("type") if channel else None
        # `ref` is required on the wire (§4.1); a channel added without one (webrtc, chat)
        # is known to the platform by its type, so the type is its ref.
        if ref in ("webrtc", "chat"):
            kind = ref
        return self._send(_codec.command(
            "channel.remove", agent_id=self.wire_id, type=kind, ref=ref))

    def _drop_channel(self, ref: str) -> None:
        with self._lock:
            self._channels.pop(ref, None)

    @property
    def channels(self) -> list[str]:
        """Channel keys: phone numbers, ``"webrtc"``, ``"chat"``."""
        with self._lock:
            return list(self._channels)

    def configure_session(self, call_id: str, **config: Any) -> bool:
        """Override config for one live session (encoded like agent config)."""
        _codec.check_config(config)
        return self._send(_codec.session_configure(call_id, self.wire_id, config))

    # ------------------------------------------------------------------ calls

    @property
    def calls(self) -> list[Call]:
        """The live calls of this agent (a snapshot)."""
        with self._lock:
            return list(self._calls.values())

    def call(self, call_id: str) -> Call | None:
        with self._lock:
            return self._calls.get(call_id)

    def _add_call(self, call: Call) -> None:
        with self._lock:
            self._calls[call.id] = call

    def _pop_call(self, call_id: str) -> Call | None:
        with self._lock:
            return self._calls.pop(call_id, None)

    def _pop_all_calls(self) -> list[Call]:
        with self._lock:
            calls, self._calls = list(self._calls.values()), {}
            return calls

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
        client = self._require_client()
        what = f"agent {self.id!r}: dial({to!r})"
        client._require_connection(what)
        self._raise_if_conflict()
        if self._failed is not None:
            raise self._failed
        pending = _Dial(to)
        with self._lock:
            self._dials.append(pending)
        frame = _codec.command(
            "call.dial", agent_id=self.wire_id, to=to, from_=from_, greeting=greeting,
            metadata=dict(metadata) if metadata else None,
            config=dict(config) if config else None, detect_turn_end=detect_turn_end or None)
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

    def _await_dial(self, pending: _Dial, timeout: float, what: str) -> None:
        """Wait for the dial's outcome; fail as soon as the client or the agent cannot get one."""
        client = self._require_client()
        deadline = time.monotonic() + timeout
        while not pending.done.wait(min(_POLL, max(0.0, deadline - time.monotonic()))):
            client._require_connection(what)
            if pending.call_id is None:  # not yet placed: registration still matters
                if self._failed is not None:
                    raise self._failed
                self._raise_if_conflict()
            if time.monotonic() >= deadline:
                self._raise_if_conflict(final=True)
                placed = (f"call.dialing for it (call {pending.call_id}), then nothing"
                          if pending.call_id else "no call.dialing for this number" + (
                              "" if self._ready.is_set() else
                              " (the agent is not registered yet: the dial is queued)"))
                raise RequestTimeout(
                    f"{what}: the call to {pending.to} was not answered within {timeout:g} s "
                    f"(waited for call.started); last seen: {placed}; {client._link_state()}")

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
            if match is None:
                match = next((d for d in self._dials if d.call_id is None and d.to == to), None)
        if match is None or match.done.is_set():
            return
        if call is not None:
            match.call = call
        else:
            match.error = CallFailedError(
                f"the call to {match.to} ended before it was answered: {reason}",
                reason=reason, call_id=call_id)
        match.done.set()

    # ------------------------------------------------------------------ REST

    def create_token(
        self, channel: Channel = "webrtc", *, metadata: Mapping[str, Any] | None = None,
        scope: Scope | None = None, call_id: str | None = None, timeout: float = 10.0,
    ) -> str:
        """Mint a browser token (``webrtc``, ``chat`` or ``stream``) for this agent.

        `metadata` is sealed into the token (the call's `metadata`); `scope` (``observe``,
        ``participate``, ``supervise``) and `call_id` narrow what it may do. Waits for the
        agent's registration first (up to `timeout`), then calls the platform's REST API with
        `requests`. Returns the token; `Client.create_token` also gives its server and
        expiry. Any thread.
        """
        return self._require_client().create_token(
            channel, self.wire_id, metadata=metadata, scope=scope, call_id=call_id,
            timeout=timeout).token

    def __repr__(self) -> str:
        state = "ready" if self.ready else "not ready"
        return f"<{type(self).__name__} {self.id!r} {state} calls={len(self._calls)}>"
