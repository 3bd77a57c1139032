"""Text sessions on the simulator: chat (docs/protocol.md §4.4, §5.10) and WhatsApp (§5.11).

A session is a `CallCore` whose speech is text: no `speech.*`, `bot.speaking`, `bot.word`
or `bot.finished`. The agent's owner sees a chat as ``llm.chat.started``, ``chat.message``,
``llm.chat.chunk`` (a server model's tokens), ``chat.response`` and ``llm.chat.ended``;
the chat user (a socket that sent ``llm.chat``, or a test through `SimChat`) sees
``llm.chat.started {model}``, ``llm.chat.token``, ``llm.chat.tool_call``,
``llm.chat.tool_result``, ``llm.chat.done`` and ``llm.chat.error``. A WhatsApp session is
``whatsapp.session_started``, ``whatsapp.message``, ``whatsapp.response`` and
``whatsapp.session_ended``, keyed by ``session_id``. Server-side model agents answer
through the scripted model; other agents answer with ``bot.reply`` / ``bot.reply.stream``
on the session id (what the TypeScript SDK's chat Call sends; the platform's handling of
it is not documented). Every method runs with the simulator lock held.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from voicesync.sim._call import CallCore
from voicesync.sim._llm import ServerTurn
from voicesync.sim._speech import BotMessage, StreamSink
from voicesync.sim._util import JsonDict, epoch, new_id, slugify, text_field
from voicesync.sim.simcall import SimCall

if TYPE_CHECKING:
    from voicesync.sim._conn import SimConnection
    from voicesync.sim._platform import AgentReg, Platform


class TextSpeaker(StreamSink):
    """`Speaker`'s place in a text session: a reply is delivered whole, at once."""

    def __init__(self, host: TextSession) -> None:
        self._host = host
        self.queue: list[BotMessage] = []  # never used: nothing waits to be spoken
        self.playing: BotMessage | None = None
        self.streams: dict[str, BotMessage] = {}
        self.dead: set[str] = set()

    @property
    def idle(self) -> bool:
        return not self.streams

    def add(self, msg: BotMessage) -> None:
        if msg.closed:
            self._host.deliver(msg)
        else:
            self.streams[msg.message_id] = msg

    def _chunked(self, msg: BotMessage, token: str) -> None:
        self._host.tell("llm.chat.token", token=token, text=msg.text)

    def _ended(self, msg: BotMessage) -> None:
        self._host.deliver(msg)

    def cancel(self, message_id: str | None) -> None:
        """`bot.cancel`: an answer still streaming is withdrawn (a sent one cannot be)."""
        for mid in [m for m in self.streams if message_id in (None, m)]:
            self.dead.add(mid)
            del self.streams[mid]

    def interrupt(self, reason: str) -> None:
        self.cancel(None)

    def drop_queue(self, notify_reason: str | None = None,
                   only: Callable[[BotMessage], bool] | None = None) -> None:
        return None

    def resume_queue(self) -> None:
        return None

    def stop(self) -> None:
        self.cancel(None)


class _TextTurn(ServerTurn):
    """A server-model turn of a chat: the chat user also sees the tool round."""

    def on_tool_result(self, frame: JsonDict) -> bool:
        if self.stage == "tool" and frame.get("msg_id") == self.msg_id:
            results = frame.get("results")
            first = results[0] if isinstance(results, list) and results else {}
            host = self.call
            assert isinstance(host, TextSession)
            host.tell("llm.chat.tool_result",
                      result=first.get("result") if isinstance(first, dict) else None)
        return super().on_tool_result(frame)  # the follow-up answer comes after


class TextSession(CallCore):
    """One chat or WhatsApp session, platform side. `kind` is ``chat`` or ``whatsapp``."""

    def __init__(self, platform: Platform, agent: AgentReg, *, kind: str, session_id: str,
                 from_: str, metadata: JsonDict, contact_name: str = "",
                 participant: SimConnection | None = None) -> None:
        super().__init__(platform, agent, call_id=session_id, from_=from_, to=agent.slug,
                         direction="inbound", transport=kind, metadata=metadata, greeting="")
        self.kind = kind
        self.speaker = TextSpeaker(self)  # type: ignore[assignment]
        self.contact_name = contact_name
        self.participant = participant
        self.told: list[JsonDict] = []  # every frame the chat user was sent

    @property
    def model(self) -> str:
        llm = self.agent_config.get("llm")
        return llm if isinstance(llm, str) and llm else "client"

    def emit(self, event: str, **fields: Any) -> None:
        if self.status in ("ended", "rejected"):
            return
        if event.startswith("whatsapp."):  # keyed by session_id only, as on the platform
            frame: JsonDict = {"event": event, "agent_id": self.agent_slug,
                               "session_id": self.call_id, **fields}
            self.last_sent[event] = frame
            self.conn.send(frame)
            return
        super().emit(event, **fields)
        if event == "llm.tool_call":
            self.tell("llm.chat.tool_call", tool_calls=[
                {"name": c.get("name"), "arguments": c.get("arguments")}
                for c in fields.get("tool_calls", ())])

    def tell(self, event: str, **fields: Any) -> None:
        """A frame for the chat user (WhatsApp users are not simulated on a socket)."""
        if self.kind != "chat":
            return
        frame: JsonDict = {"event": event, "session_id": self.call_id, **fields}
        self.told.append(frame)
        if self.participant is not None:
            self.participant.send(frame)
        self.notify()

    # -- lifecycle ----------------------------------------------------------------------

    def begin(self) -> None:
        self.status = "active"
        self.started_mono = self.clock.now()
        self.started_at = epoch()
        if self.kind == "chat":
            self.emit("llm.chat.started", metadata=self.metadata, language=self.language)
            self.tell("llm.chat.started", model=self.model)
        else:
            self.emit("whatsapp.session_started", contact_phone=self.from_,
                      contact_name=self.contact_name)
        self.notify()

    def end(self, reason: str) -> None:
        if self.status in ("ended", "rejected"):
            return
        self._stop_everything()
        duration = round(self.clock.sim_elapsed(self.started_mono), 3)
        times = {"started_at": self.started_at, "ended_at": self.started_at + duration}
        if self.kind == "chat":
            self.emit("llm.chat.ended", reason=reason, duration_seconds=duration,
                      messages=list(self.history), **times)
        else:
            self.emit("whatsapp.session_ended", contact_phone=self.from_,
                      contact_name=self.contact_name, duration=duration, reason=reason,
                      message_count=len(self.history), messages=list(self.history), **times)
        if reason == "disconnected":  # the agent's socket went away under the user
            self.tell("llm.chat.error", error="the agent disconnected")
        self.status, self.ended_reason = "ended", reason
        self.platform.forget_call(self)
        self.notify()

    # -- the user's messages and the agent's answers --------------------------------------

    def user_turn(self, text: str, *, eager: bool | None = None, duplicate: bool = False,
                  docs_order: bool = False) -> str | None:
        """One user message: the whole turn at once (no speech, no turn detection)."""
        if self.status != "active":
            raise RuntimeError(f"session {self.call_id} is {self.status}")
        self.turn += 1
        message_id = new_id("", 32)
        self.user_message_id, self.user_text = message_id, text
        self.transcript.append(("user", text, False))
        self.history.append({"role": "user", "content": text})
        self.reply_mark = len(self.transcript)
        for _ in range(2 if duplicate else 1):
            if self.kind == "chat":
                self.emit("chat.message", message_id=message_id, text=text)
            else:
                self.emit("whatsapp.message", text=text, message_id=message_id, type="text",
                          name=self.contact_name, paused=False, **{"from": self.from_})
        if self.agent_config.get("llm"):
            if self.server_turn is not None:
                self.server_turn.cancel()
            self.server_turn = _TextTurn(self, self.turn, text)
            self.server_turn.start()
        self.notify()
        return message_id

    def deliver(self, msg: BotMessage) -> None:
        """An answer is complete: the owner and the user get it whole (a server model's
        tokens first, as `llm.chat.chunk` / `llm.chat.token`)."""
        text = msg.text.strip()
        if msg.kind == "server" and self.kind == "chat":
            so_far = ""
            for word in text.split():
                token = f" {word}" if so_far else word
                so_far += token
                self.emit("llm.chat.chunk", message_id=msg.message_id, token=token)
                self.tell("llm.chat.token", token=token, text=so_far)
        elif msg.kind == "reply" and text:  # a whole `bot.reply` reaches the user as one token
            self.tell("llm.chat.token", token=text, text=text)
        self.transcript.append(("bot", text, False))
        self.history.append({"role": "assistant", "content": text})
        if self.kind == "chat":
            self.emit("chat.response", message_id=msg.message_id, text=text)
            self.tell("llm.chat.done", text=text, model=self.model)
        else:
            self.emit("whatsapp.response", to=self.from_, text=text,
                      message_id=msg.message_id)
        self.notify()


def open_session(platform: Platform, agent: AgentReg, kind: str, *,
                 session_id: str | None = None, from_: str = "",
                 metadata: JsonDict | None = None, contact_name: str = "",
                 participant: SimConnection | None = None) -> TextSession:
    """Start a session (its first frames are sent) and register it like a call."""
    if session_id is None:
        stamp = format(int(time.time() * 1000), "x")
        session_id = (f"chat-{stamp}-{new_id('', 4)}" if kind == "chat"
                      else new_id("wa-", 12))
    session = TextSession(platform, agent, kind=kind, session_id=session_id,
                          from_=from_ or ("chat" if kind == "chat" else "+15550002222"),
                          metadata=dict(metadata or {}), contact_name=contact_name,
                          participant=participant)
    platform.calls[session_id] = session
    platform.all_calls.append(session)
    session.begin()
    return session


def llm_chat(platform: Platform, conn: SimConnection, frame: JsonDict) -> None:
    """§4.4: a socket chats with an agent; the first message of a session opens it."""
    session_id, text = text_field(frame, "session_id"), text_field(frame, "text")
    if not session_id or text is None:
        conn.send({"event": "llm.chat.error", "error": "llm.chat needs session_id and text"})
        return
    session = platform.calls.get(session_id)
    if session is None:
        agent = platform.agents.get(slugify(text_field(frame, "agent_id") or ""))
        if agent is None:
            conn.send({"event": "llm.chat.error", "session_id": session_id,
                       "error": f"agent {frame.get('agent_id')!r} is not connected"})
            return
        session = open_session(platform, agent, "chat", session_id=session_id,
                               participant=conn)
    if not isinstance(session, TextSession) or session.participant is not conn:
        conn.send({"event": "llm.chat.error", "session_id": session_id,
                   "error": f"session {session_id!r} belongs to someone else"})
        return
    session.user_turn(text)


class SimChat(SimCall):
    """A chat or WhatsApp session on the simulator, driven as its user.

    `say(text)` sends one message (returns its id); `send(text)` also waits for the
    answer; `hangup()` / `end()` ends the session. `told` is what the chat user received.
    """

    def send(self, text: str, timeout: float = 10.0) -> str:
        """Send a message and return the agent's answer to it."""
        self.say(text, timeout=timeout)
        return self.wait_reply(timeout)

    def end(self, reason: str = "completed") -> None:
        self.hangup(reason)

    @property
    def told(self) -> list[JsonDict]:
        core = self._core
        assert isinstance(core, TextSession)
        with core.lock:
            return [dict(f) for f in core.told]


class _Unannounced(CallCore):
    """A WebRTC call whose `call.started` the client never gets (`adopt_webrtc`)."""

    def emit(self, event: str, **fields: Any) -> None:
        if event != "call.started":
            super().emit(event, **fields)


class TextSessions:
    """The simulator's methods that start text sessions (and unannounced WebRTC calls);
    mixed into `Simulator`."""

    _platform: Platform

    if TYPE_CHECKING:
        def _find_agent(self, agent: str | None, to: str | None, timeout: float) -> AgentReg:
            ...

    def start_chat(self, agent: str | None = None, *, metadata: JsonDict | None = None,
                   token: str | None = None, session_id: str | None = None,
                   timeout: float = 5.0) -> SimChat:
        """Open a chat with `agent` (or the agent a chat `token` was minted for)."""
        return self._open("chat", agent, token, timeout, session_id=session_id,
                          metadata=metadata)

    def start_whatsapp(self, agent: str | None = None, contact_phone: str = "+15550002222",
                       contact_name: str = "Ana", *, timeout: float = 5.0) -> SimChat:
        """Open a WhatsApp session from `contact_phone` (default agent: the first with a
        WhatsApp channel)."""
        platform = self._platform
        if agent is None:
            with platform.lock:
                agent = next((a.slug for a in platform.agents.values() if any(
                    c.get("type") == "whatsapp" for c in a.channels.values())), None)
            if agent is None:
                raise LookupError("no agent has a WhatsApp channel")
        return self._open("whatsapp", agent, None, timeout, from_=contact_phone,
                          contact_name=contact_name)

    def adopt_webrtc(self, agent: str, from_: str = "webrtc", *, timeout: float = 5.0) -> str:
        """Start a WebRTC call without sending `call.started`: the client first hears of
        it from its other events (the caller's speech), and must create the call itself.
        Returns its ``wrt_`` id (drive it with `call(id)`)."""
        platform = self._platform
        with platform.changed:
            reg = self._find_agent(agent, None, timeout)
            core = _Unannounced(platform, reg, call_id=new_id("wrt_", 16), from_=from_,
                                to=reg.slug, direction="inbound", transport="webrtc",
                                metadata={})
            platform.calls[core.call_id] = core
            platform.all_calls.append(core)
            core.begin()
            return core.call_id

    def _open(self, kind: str, agent: str | None, token: str | None, timeout: float,
              **fields: Any) -> SimChat:
        platform = self._platform
        if token is not None:
            grant = platform.grant(token)
            agent = grant.agent_id
            fields["metadata"] = {**grant.metadata, **(fields.get("metadata") or {})}
        with platform.changed:
            reg = self._find_agent(agent, None, timeout)
            session = open_session(platform, reg, kind, **fields)
            chat = session.sim_call = SimChat(session)
            return chat
