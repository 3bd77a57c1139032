"""Agent: one registered assistant; its config, channels, calls, and the subclassing hooks."""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from voicesync import _codec
from voicesync._backoff import ConflictEpisode
from voicesync._channels import Channels
from voicesync._dialing import Dialing, PendingDial
from voicesync._listeners import Listeners, Subscribable, check_event_name, check_signature
from voicesync._registration import Registration
from voicesync.call import Call
from voicesync.errors import (
    ConfigurationError,
    RegistrationError,
)
from voicesync.skills import Skill, attach

if TYPE_CHECKING:
    from voicesync._uplink import Uplink
    from voicesync.client import Client
    from voicesync.events import Turn
    from voicesync.history import History, HistoryStore
    from voicesync.rest import Channel, Scope

logger = logging.getLogger(__name__)

MAX_QUEUED = 1000


class Agent(Channels, Dialing, Registration, Subscribable):
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
    _client_type: ClassVar[type[Client]]  # set by voicesync.client (importing it: a cycle)

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
        self._uplink: Uplink | None = None  # what it and its calls may use of the client
        self._lock = threading.RLock()
        self._listeners = Listeners()
        self._greeting_fn: Callable[[Call], Any] | None = None  # a callable greeting
        self._config: dict[str, Any] = self._class_config(config)
        self._allowed_origins = list(allowed_origins) if allowed_origins else None
        self._channels: dict[str, dict[str, Any]] = {}
        self._dev_config: dict[str, Any] | None = None
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._calls: dict[str, Call] = {}
        self._dials: list[PendingDial] = []
        self._ready = threading.Event()
        self._settled = threading.Event()  # ready, or registration failed for good
        self._failed: RegistrationError | None = None
        self.conflict: ConflictEpisode | None = None
        for number in ([phone] if phone else []) + list(phones):
            self.add_phone(number, ringing=ringing)
        if type(self).on_turn is not Agent.on_turn:
            self._listeners.add(self.turn_event, self._turn_hook)  # checked by the subclass
        if self._greeting_fn is not None:  # else no handler thread per call.started (bench)
            self.on("call.started", self._greet)  # update() may make it text: _greet skips
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
        target = client or self._client or self._client_type()
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
            raise self._unattached()
        return self._client

    def _require_uplink(self) -> Uplink:
        if self._uplink is None:  # given with the client
            raise self._unattached()
        return self._uplink

    def _unattached(self) -> ConfigurationError:
        return ConfigurationError(f"agent {self.id!r} is not attached to a client: use "
                                  "client.agent(...) or client.add_agent(agent)")

    def _attach(self, client: Client, uplink: Uplink) -> None:
        if self._client is not None and self._client is not client:
            raise ConfigurationError(f"agent {self.id!r} already belongs to another client")
        self._client = client
        self._uplink = uplink

    @property
    def ready(self) -> bool:
        """True while the platform has acknowledged this agent on the current connection."""
        return self._ready.is_set()

    @property
    def config(self) -> dict[str, Any]:
        """The agent's current config (a copy), as it will be re-sent after a reconnect."""
        with self._lock:
            return dict(self._config)

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
            return self._require_uplink().send(frame)

    def _acknowledged(self) -> None:
        """On `agent.created`: re-send channels, flush the queue, mark ready (reader thread)."""
        uplink = self._require_uplink()
        with self._lock:
            self.conflict = None
            self._failed = None
            for channel in self._channels.values():
                uplink.send(channel)
            if self._dev_config is not None:
                uplink.send(self._dev_config)
            while self._queue:
                uplink.send(self._queue.popleft())
            self._ready.set()
            self._settled.set()

    # ------------------------------------------------------------------ config & sessions

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

    def skill(self, skill: Skill) -> Skill:
        """Attach a `voicesync.skill(...)` at runtime, replacing one of the same name; its
        tools run here like the agent's own (`voicesync.skills.attach`). Any thread."""
        attach(self, skill)
        return skill

    def configure_session(self, call_id: str, **config: Any) -> bool:
        """Override config for one live session (encoded like agent config). Any thread.

        Sent at once or not at all (False), never queued: a session belongs to the
        connection it started on, so a live call of this agent's is configured only on
        its own connection, and nothing waits for a later one.
        """
        _codec.check_config(config)
        frame = _codec.session_configure(call_id, self.wire_id, config)
        call = self.call(call_id)
        if call is not None:
            return call.send(frame)
        return self._ready.is_set() and self._require_uplink().send(frame)

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
