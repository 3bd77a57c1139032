"""The simulator's shared state: connections, registered agents, phone numbers, calls, tokens."""

from __future__ import annotations

import collections
import itertools
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from websockets.sync.server import ServerConnection

from voicesync.sim._call import CallCore
from voicesync.sim._clock import Clock
from voicesync.sim._conn import SimConnection, Withholds
from voicesync.sim._llm import ScriptedLLM
from voicesync.sim._memory import MemoryStore
from voicesync.sim._record import FrameLog
from voicesync.sim._settings import SimSettings
from voicesync.sim._util import JsonDict, new_id, phone_call_id

logger = logging.getLogger(__name__)


KEEP_CALLS = 1000  # calls (live or ended) the simulator remembers for inspection


@dataclass
class AgentReg:
    """An agent registered on one connection, with its config and claimed channels."""

    slug: str
    raw_id: str
    conn: SimConnection
    config: JsonDict
    channels: dict[str, JsonDict] = field(default_factory=dict)


@dataclass(frozen=True)
class TokenGrant:
    """A token minted over REST for a browser (webrtc/chat/stream) session of an agent.

    A stream token may name several agents (`agents`; `agent_id` is the first).
    """

    token: str
    agent_id: str
    channel: str
    metadata: JsonDict
    scope: str = ""
    call_id: str = ""
    agents: tuple[str, ...] = ()


class Platform:
    """Everything the simulator knows. One `lock` guards it all, calls included."""

    def __init__(self, settings: SimSettings, clock: Clock, log: FrameLog) -> None:
        self.settings = settings
        self.clock = clock
        self.log = log
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.withholds = Withholds()
        self.llm = ScriptedLLM()
        self.conns: dict[int, SimConnection] = {}
        self.agents: dict[str, AgentReg] = {}
        self.phones: dict[str, str] = {}
        self.lines: dict[str, AgentReg] = {}  # by number; slug `line:<number>`
        self.calls: dict[str, CallCore] = {}
        # Ended calls stay inspectable, but only the newest ones: a long-running simulator
        # (a soak, a benchmark) must not grow with every call it ever ran.
        self.all_calls: collections.deque[CallCore] = collections.deque(maxlen=KEEP_CALLS)
        self.tokens: dict[str, TokenGrant] = {}
        self.memory = MemoryStore()  # its own lock: REST requests need not wait for calls
        self.dev_callers: dict[int, list[Any]] = {}
        self._conn_ids = itertools.count(1)

    def grant(self, token: str) -> TokenGrant:
        """What a browser token was minted for (KeyError for one never minted)."""
        with self.lock:
            grant = self.tokens.get(token)
        if grant is None:
            raise KeyError(f"unknown token {token!r}")
        return grant

    def add_conn(self, ws: ServerConnection) -> SimConnection:
        conn = SimConnection(next(self._conn_ids), ws, self.log, self.withholds)
        with self.lock:
            self.conns[conn.id] = conn
            self.changed.notify_all()
        conn.start()
        return conn

    def release_conn(self, conn: SimConnection) -> None:
        """The socket closed: end its calls, free its agents, numbers and lines (§9.7)."""
        with self.lock:
            self.conns.pop(conn.id, None)
            conn.closed.set()
            for call in [c for c in self.calls.values() if c.conn is conn]:
                call.end("disconnected")
            for call in [c for c in self.calls.values()
                         if getattr(c, "participant", None) is conn]:
                call.end("user_left")  # a chat user's socket (sim/_chat.py)
            for slug in [s for s, a in self.agents.items() if a.conn is conn]:
                self.drop_agent(slug)
            for number in [n for n, line in self.lines.items() if line.conn is conn]:
                del self.lines[number]
            self.dev_callers.pop(conn.id, None)
            self.changed.notify_all()
        conn.finish()

    def drop_agent(self, slug: str) -> None:
        self.agents.pop(slug, None)
        for number in [n for n, owner in self.phones.items() if owner == slug]:
            del self.phones[number]

    def agent_for_number(self, number: str) -> AgentReg | None:
        """The agent owning `number`, or the line (`line:<number>`) claiming it."""
        slug = self.phones.get(number)
        return self.agents.get(slug) if slug is not None else self.lines.get(number)

    def new_call(self, agent: AgentReg, *, from_: str, to: str, direction: str = "inbound",
                 transport: str = "phone", metadata: JsonDict | None = None,
                 greeting: str | None = None, call_id: str | None = None) -> CallCore:
        if call_id is None:
            call_id = phone_call_id() if transport == "phone" else new_id(
                "wrt_" if transport == "webrtc" else f"{transport}-", 16)
        call = CallCore(self, agent, call_id=call_id, from_=from_, to=to, direction=direction,
                        transport=transport, metadata=dict(metadata or {}), greeting=greeting)
        self.calls[call_id] = call
        self.all_calls.append(call)
        return call

    def forget_call(self, call: CallCore) -> None:
        self.calls.pop(call.call_id, None)

    def ringing(self, agent: AgentReg, number: str) -> bool:
        channel = agent.channels.get(number)
        return bool(channel and channel.get("ringing") is True)
