"""Chat sessions, WhatsApp sessions and adopted WebRTC calls, against the simulator over
real loopback sockets (docs/protocol.md §4.4, §5.2, §5.10, §5.11)."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

import pytest
from helpers import CANARY_KEY, until

import voicesync
from voicesync import Call
from voicesync.tools import tool


def _client(sim: Any, agent_id: str, **config: Any) -> tuple[voicesync.Client, voicesync.Agent]:
    client = voicesync.Client(api_key=CANARY_KEY, url=sim.url)
    agent = client.agent(agent_id, **config)
    client.connect(timeout=5)
    agent.wait_ready(5)
    return client, agent


def test_a_chat_is_a_call_answered_by_the_turn_handler(sim: Any) -> None:
    client, agent = _client(sim, "desk")
    started: queue.Queue[Call] = queue.Queue()
    ended: queue.Queue[tuple[Call, str]] = queue.Queue()
    agent.on("chat.started", started.put)
    agent.on("call.ended", lambda call, reason: ended.put((call, reason)))

    @agent.on("turn.end")
    def answer(turn: voicesync.Turn, call: Call) -> None:
        if turn.text.startswith("stream"):
            with call.reply_stream() as stream:
                for word in ("one", " two", " three"):
                    stream.write(word)
        else:
            call.reply(f"Echo: {turn.text}")

    try:
        chat = sim.start_chat("desk", metadata={"userId": "u7"})
        call = started.get(timeout=5)
        assert (call.id, call.transport, call.from_, call.to) == (chat.call_id, "chat", "chat",
                                                                  "desk")
        assert call.metadata == {"userId": "u7"}
        assert chat.send("hello there") == "Echo: hello there"
        assert chat.send("stream please") == "one two three"
        # The chat user saw tokens and a done frame; nobody saw speech.
        told = [f["event"] for f in chat.told]
        assert told[0] == "llm.chat.started" and "llm.chat.token" in told
        assert [f["text"] for f in chat.told if f["event"] == "llm.chat.done"] == [
            "Echo: hello there", "one two three"]
        speech = [f for f in sim.frames if f.call_id == chat.call_id
                  and f.event.startswith(("bot.speaking", "bot.word", "speech."))]
        assert speech == []
        until(lambda: len(call.transcript) == 4, what="the answer reached the client")
        assert call.transcript == [
            {"role": "user", "content": "hello there"},
            {"role": "assistant", "content": "Echo: hello there"},
            {"role": "user", "content": "stream please"},
            {"role": "assistant", "content": "one two three"}]
        chat.end()
        gone, reason = ended.get(timeout=5)
        assert gone is call and reason == "chat_completed" and call.ended
        assert agent.call(chat.call_id) is None
    finally:
        client.close()


def test_a_chat_with_the_platforms_model_answers_its_tools_on_the_chat_id(sim: Any) -> None:
    seen: list[Any] = []

    @tool
    def order_status(order: str, call: Call) -> str:
        """Where an order is."""
        seen.append(call)
        return f"order {order} ships today"

    client, agent = _client(sim, "shop", llm="openai/gpt-4.1-mini", prompt="Sell.",
                            tools=[order_status])
    started: queue.Queue[Call] = queue.Queue()
    agent.on("chat.started", started.put)
    try:
        chat = sim.start_chat("shop")
        call = started.get(timeout=5)
        mark = sim.mark()
        answer = chat.send('order_status {"order": "A1"}')
        assert answer == 'The order_status tool says order A1 ships today.'
        result = sim.wait_frame(event="llm.tool_result", direction="in", since=mark,
                                call_id=chat.call_id).data
        assert result["results"][0]["result"] == "order A1 ships today"
        assert seen == [call]
        told = [f["event"] for f in chat.told]
        assert "llm.chat.tool_call" in told and "llm.chat.tool_result" in told
        # The platform's model streamed its answer to the owner as chunks.
        sim.wait_frame(event="chat.response", direction="out", since=mark)
        chunks = [f.data["token"] for f in sim.frames_since(mark)
                  if f.event == "llm.chat.chunk" and f.direction == "out"]
        assert "".join(chunks) == answer
    finally:
        client.close()


def test_a_tool_round_before_the_chat_started_opens_the_session(sim: Any) -> None:
    @tool
    def price(sku: str, call: Call | None = None) -> dict[str, Any]:
        """The price of an item."""
        return {"sku": sku, "transport": call.transport if call else None}

    client, agent = _client(sim, "shop", llm="openai/gpt-4.1-mini", tools=[price])
    started: queue.Queue[Call] = queue.Queue()
    agent.on("chat.started", started.put)
    try:
        mark = sim.mark()
        frame = {"event": "llm.tool_call", "agent_id": "shop", "call_id": "chat-9",
                 "msg_id": "r1", "tool_calls": [
                     {"id": "t0", "name": "price", "arguments": '{"sku": "tea"}'}]}
        sim.send(frame)
        sim.send(frame)  # a re-sent round is answered once
        answer = sim.wait_frame(event="llm.tool_result", direction="in", since=mark).data
        assert answer["results"] == [
            {"tool_call_id": "t0", "result": {"sku": "tea", "transport": "chat"}}]
        assert started.get(timeout=5).id == "chat-9"
        sim.send({**frame, "msg_id": "r2"})
        sim.wait_frame(event="llm.tool_result", direction="in", since=mark, msg_id="r2")
        assert len([f for f in sim.frames_since(mark) if f.event == "llm.tool_result"]) == 2
    finally:
        client.close()


def test_a_chat_over_the_participant_socket(sim: Any) -> None:
    """A second socket chats with the agent with `llm.chat` (§4.4), as the CLI does."""
    client, agent = _client(sim, "desk")
    agent.on("turn.end", lambda turn, call: call.reply(f"Hi {turn.text}"))
    ended = threading.Event()
    agent.on("call.ended", lambda call, reason: ended.set())
    user = voicesync.Client(api_key=CANARY_KEY, url=sim.url)  # the chat user's socket
    heard: queue.Queue[tuple[str, Any]] = queue.Queue()
    for name in ("llm.chat.started", "llm.chat.token", "llm.chat.done", "llm.chat.error"):
        user.on(name, lambda event, call=None: heard.put((event.name, event.get("text"))))
    try:
        user.connect(timeout=5)
        user.send({"event": "llm.chat", "session_id": "chat-abc-1234", "agent_id": "desk",
                   "text": "Ana"})
        assert heard.get(timeout=5)[0] == "llm.chat.started"
        assert heard.get(timeout=5) == ("llm.chat.token", "Hi Ana")
        assert heard.get(timeout=5) == ("llm.chat.done", "Hi Ana")
        user.send({"event": "llm.chat", "session_id": "chat-2", "agent_id": "gone",
                   "text": "x"})
        assert heard.get(timeout=5) == ("llm.chat.error", None)
        assert sim.call("chat-abc-1234").transport == "chat"
        user.close()  # the chat user leaves: the session ends for the agent
        assert ended.wait(5)
    finally:
        user.close()
        client.close()


def test_whatsapp_channel_and_sessions(sim: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="voicesync")
    client, agent = _client(sim, "wa", llm="openai/gpt-4.1-mini")
    started: queue.Queue[Call] = queue.Queue()
    ended: queue.Queue[str] = queue.Queue()
    agent.on("whatsapp.started", started.put)
    agent.on("call.ended", lambda call, reason: ended.put(reason))
    try:
        mark = sim.mark()
        agent.add_whatsapp("123456789012345", access_token="EAAsecret-token-1",
                           verify_token="verify-me", phone="+51987654321", voice="x/y")
        added = sim.wait_frame(event="channel.add", direction="in", since=mark).data
        assert added == {"event": "channel.add", "agent_id": "wa", "type": "whatsapp",
                         "ref": "123456789012345", "accessToken": "EAAsecret-token-1",
                         "verifyToken": "verify-me", "phone": "+51987654321", "voice": "x/y"}
        sim.wait_frame(event="channel.added", since=mark)
        assert "channel.add" in caplog.text and "EAAsecret" not in caplog.text  # redacted
        session = sim.start_whatsapp(contact_phone="+51911122233", contact_name="Rosa")
        call = started.get(timeout=5)
        assert (call.id, call.transport, call.from_) == (session.call_id, "whatsapp",
                                                         "+51911122233")
        assert call.metadata == {"contact_name": "Rosa"}
        assert session.send("hola") == "You said: hola."
        until(lambda: len(call.transcript) == 2, what="the answer reached the client")
        assert call.transcript[-1] == {"role": "assistant", "content": "You said: hola."}
        session.end("inactive")
        assert ended.get(timeout=5) == "inactive"
        agent.remove_whatsapp("123456789012345")
        removed = sim.wait_frame(event="channel.remove", direction="in", since=mark).data
        assert removed["type"] == "whatsapp" and "123456789012345" not in agent.channels
    finally:
        client.close()


def test_whatsapp_frames_without_agent_id_find_the_agent_with_the_channel(sim: Any) -> None:
    client, agent = _client(sim, "wa2")
    agent.add_whatsapp("555", access_token="EAA-another-token")
    sim.wait_frame(event="channel.added")
    messages: queue.Queue[tuple[Any, Call]] = queue.Queue()
    agent.on("whatsapp.message", lambda event, call: messages.put((event, call)))
    try:
        sim.send({"event": "whatsapp.message", "session_id": "wa-1", "from": "+5491100",
                  "name": "Leo", "type": "text", "text": "hi", "message_id": "m1",
                  "paused": False})
        event, call = messages.get(timeout=5)
        assert event.get("text") == "hi" and call.id == "wa-1" and call.from_ == "+5491100"
    finally:
        client.close()


def test_events_of_an_unseen_webrtc_call_create_it(sim: Any) -> None:
    client, agent = _client(sim, "web")
    started: queue.Queue[Call] = queue.Queue()
    agent.on("call.started", started.put)
    agent.on("turn.end", lambda turn, call: call.reply(f"got {turn.text}"))
    try:
        call_id = sim.adopt_webrtc("web")
        with pytest.raises(TimeoutError):  # the platform never announces it
            sim.wait_frame(event="call.started", call_id=call_id, timeout=0.2)
        sim_call = sim.call(call_id)
        sim_call.say("hello")
        call = started.get(timeout=5)
        assert (call.id, call.transport, call.from_, call.to) == (call_id, "webrtc",
                                                                  "webrtc", "web")
        assert sim_call.wait_reply(5) == "got hello"
        # Acknowledgements and ends never create a call.
        sim.send({"event": "call.ended", "agent_id": "web", "call_id": "wrt_never"})
        sim.send({"event": "call.held", "agent_id": "web", "call_id": "wrt_never2"})
        sim_call.hangup()
        sim.wait_frame(event="call.ended", call_id=call_id)
        assert call.wait_ended(5)
        # A late event of the ended call does not bring it back.
        sim.send({"event": "speech.started", "agent_id": "web", "call_id": call_id})
        sim.send({"event": "speech.started", "agent_id": "web", "call_id": "wrt_last"})
        assert started.get(timeout=5).id == "wrt_last"
        assert started.empty() and {c.id for c in agent.calls} == {"wrt_last"}
    finally:
        client.close()


def test_every_whatsapp_number_is_added_again_after_a_reconnect(sim: Any) -> None:
    """Kept per number id: the TypeScript SDK keys them by type and re-adds only the last."""
    from voicesync._backoff import Backoff

    client = voicesync.Client(api_key=CANARY_KEY, url=sim.url,
                              backoff=Backoff(initial=0.05, maximum=0.2))
    agent = client.agent("wa")
    ready = threading.Event()
    agent.on("ready", ready.set)
    try:
        client.connect(timeout=5)
        agent.wait_ready(5)
        agent.add_whatsapp("111", access_token="EAA-first-token", phone="+51900000001")
        agent.add_whatsapp("222", access_token="EAA-second-token")
        sim.wait_frame(event="channel.added", ref="222")
        ready.clear()
        mark = sim.mark()
        sim.drop(code=1001, reason="going away")
        assert ready.wait(10)
        sim.wait_frame(event="channel.added", since=mark, ref="222")
        again = [f.data for f in sim.frames_since(mark)
                 if f.direction == "in" and f.event == "channel.add"]
        assert [(f["ref"], f.get("phone")) for f in again] == [("111", "+51900000001"),
                                                               ("222", None)]
    finally:
        client.close()


def test_a_returning_whatsapp_contact_gets_the_earlier_conversation(sim: Any) -> None:
    from voicesync.returning import restore_returning_callers

    store = voicesync.MemoryStore()
    client = voicesync.Client(api_key=CANARY_KEY, url=sim.url)
    try:
        agent = client.agent("wa", llm="openai/gpt-4.1-mini", history_store=store)
        agent.add_whatsapp("777", access_token="EAA-restore-token")
        restore_returning_callers(agent)
        client.connect(timeout=5)
        agent.wait_ready(5)
        sim.wait_frame(event="channel.added", ref="777")
        first = sim.start_whatsapp(contact_phone="+51911100000")
        answer = first.send("I ordered the blue bike.")
        first.end("inactive")
        until(lambda: [r for r in store.find_by_contact("+51911100000", limit=5)
                       if r.get("status") == "ended"], what="the first session saved")
        mark = sim.mark()
        second = sim.start_whatsapp(contact_phone="+51911100000")
        restored = sim.wait_frame(event="history.set", direction="in", since=mark,
                                  call_id=second.call_id).data["messages"]
        assert restored == [{"role": "user", "content": "I ordered the blue bike."},
                            {"role": "assistant", "content": answer}]
    finally:
        client.close()
