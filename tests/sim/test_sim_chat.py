"""The simulator's text sessions, checked with a bare protocol client (docs/protocol.md
§4.4, §5.10, §5.11): chat and WhatsApp are played as text, never as speech."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable

from sim_support import WsClient, barrier, of

from voicesync.sim import Simulator

SPEECH = ("speech.started", "speech.ended", "user.speaking", "turn.end", "eager.turn",
          "bot.speaking", "bot.word", "bot.finished", "message.confirmed")


def test_a_chat_user_socket_and_a_client_llm_owner(sim: Simulator,
                                                   make_client: Callable[..., WsClient]) -> None:
    owner, user = make_client(), make_client()
    owner.register("desk")
    user.send({"event": "llm.chat", "session_id": "chat-x1-ab12", "agent_id": "desk",
               "text": "hi there"})
    started = owner.expect("llm.chat.started", call_id="chat-x1-ab12")
    assert started["agent_id"] == "desk" and started["session_id"] == "chat-x1-ab12"
    assert user.expect("llm.chat.started")["model"] == "client"
    message = owner.expect("chat.message", call_id="chat-x1-ab12")
    assert message["text"] == "hi there"
    # The owner answers with a stream on the session id; the user sees its tokens.
    for action, extra in (("start", {"in_reply_to": message["message_id"]}),
                          ("chunk", {"token": "Hello"}), ("chunk", {"token": " Ana"}),
                          ("end", {})):
        owner.send({"event": "bot.reply.stream", "call_id": "chat-x1-ab12",
                    "message_id": "msg_s1", "action": action, **extra})
    done = user.expect("llm.chat.done")
    assert done["text"] == "Hello Ana" and done["session_id"] == "chat-x1-ab12"
    assert [f["token"] for f in of(user.frames, "llm.chat.token")] == ["Hello", " Ana"]
    response = owner.expect("chat.response", call_id="chat-x1-ab12")
    assert (response["text"], response["message_id"]) == ("Hello Ana", "msg_s1")
    # A reply to an older message is rejected, as on a call.
    user.send({"event": "llm.chat", "session_id": "chat-x1-ab12", "text": "again"})
    owner.expect("chat.message", text="again")
    owner.reply("chat-x1-ab12", "late", in_reply_to=message["message_id"])
    owner.expect("reply.rejected", call_id="chat-x1-ab12")
    barrier(owner)
    assert not [f for f in owner.frames if f.get("event") in SPEECH]
    user.close()  # the user leaves
    ended = owner.expect("llm.chat.ended", call_id="chat-x1-ab12")
    assert ended["reason"] == "user_left" and len(ended["messages"]) == 3


def test_a_chat_with_a_server_model_and_a_tool_round(sim: Simulator,
                                                     make_client: Callable[..., WsClient]
                                                     ) -> None:
    owner = make_client()
    owner.register("shop", llm="openai/gpt-4.1-mini", preparing=False, tools=[
        {"type": "function", "function": {"name": "stock", "parameters": {}}}])
    chat = sim.start_chat("shop", metadata={"userId": "u1"})
    assert owner.expect("llm.chat.started")["metadata"] == {"userId": "u1"}
    chat.say('stock {"sku": "tea"}')
    call = owner.expect("llm.tool_call", call_id=chat.call_id)
    assert [e["event"] for e in chat.told] == ["llm.chat.started", "llm.chat.tool_call"]
    owner.send({"event": "llm.tool_result", "call_id": chat.call_id, "msg_id": call["msg_id"],
                "results": [{"tool_call_id": call["tool_calls"][0]["id"], "result": "12"}]})
    assert chat.wait_reply(5) == "The stock tool says 12."
    assert owner.expect("chat.response")["text"] == "The stock tool says 12."
    chunks = [f["token"] for f in of(owner.frames, "llm.chat.chunk")]
    assert "".join(chunks) == "The stock tool says 12."
    told = [e["event"] for e in chat.told]
    assert told[-1] == "llm.chat.done" and "llm.chat.tool_result" in told
    owner.send({"event": "call.hangup", "call_id": chat.call_id})
    assert chat.wait_ended(5) == "hangup"
    assert not [f for f in owner.frames if f.get("event") in SPEECH]


def test_llm_chat_to_a_missing_or_leaving_agent_is_an_error(
        sim: Simulator, make_client: Callable[..., WsClient]) -> None:
    user, owner = make_client(), make_client()
    user.send({"event": "llm.chat", "session_id": "chat-1", "agent_id": "nobody", "text": "x"})
    assert "nobody" in user.expect("llm.chat.error", session_id="chat-1")["error"]
    owner.register("desk")
    user.send({"event": "llm.chat", "session_id": "chat-2", "agent_id": "desk", "text": "x"})
    owner.expect("chat.message", call_id="chat-2")
    owner.close()
    assert "disconnected" in user.expect("llm.chat.error", session_id="chat-2")["error"]
    assert sim.call("chat-2").wait_ended(5) == "disconnected"


def test_whatsapp_sessions_are_keyed_by_session_id(sim: Simulator, ws: WsClient) -> None:
    ws.register("wa", llm="openai/gpt-4.1-mini", preparing=False)
    ws.send({"event": "channel.add", "agent_id": "wa", "type": "whatsapp", "ref": "123",
             "accessToken": "EAA-x"})
    ws.expect("channel.added", type="whatsapp", ref="123")
    session = sim.start_whatsapp(contact_phone="+51900000001", contact_name="Rosa")
    started = ws.expect("whatsapp.session_started")
    assert "call_id" not in started and started["session_id"] == session.call_id
    assert (started["contact_phone"], started["contact_name"]) == ("+51900000001", "Rosa")
    assert session.send("hola") == "You said: hola."
    message = ws.expect("whatsapp.message")
    assert (message["from"], message["text"], message["paused"]) == ("+51900000001", "hola",
                                                                    False)
    assert ws.expect("whatsapp.response")["text"] == "You said: hola."
    session.end("inactive")
    ended = ws.expect("whatsapp.session_ended")
    assert ended["reason"] == "inactive" and ended["message_count"] == 2
    assert not [f for f in ws.frames if f.get("event") in SPEECH]


def test_a_webrtc_call_can_start_unannounced(sim: Simulator, ws: WsClient) -> None:
    ws.register("web")
    call_id = sim.adopt_webrtc("web")
    sim.call(call_id).say("hello")
    assert ws.expect("user.message", call_id=call_id)["text"] == "hello"
    assert not of(ws.frames, "call.started")


def test_the_control_api_plays_a_chat(sim: Simulator, ws: WsClient) -> None:
    """A test in any language starts a chat and sends messages over HTTP."""
    from voicesync.sim._control import ControlServer

    ws.register("desk")
    control = ControlServer(sim).start()
    replier = threading.Thread(target=_answer_chats, args=(ws,), name="test-chat-owner",
                               daemon=True)
    replier.start()
    try:
        chat = _post(control.url + "/v1/calls", {"agent": "desk", "transport": "chat"})
        assert chat["transport"] == "chat" and chat["call_id"].startswith("chat-")
        said = _post(f"{control.url}/v1/calls/{chat['call_id']}/say", {"text": "ping"})
        assert said["reply"] == "pong: ping"
        ended = _post(f"{control.url}/v1/calls/{chat['call_id']}/hangup", {})
        assert ended["status"] == "ended"
    finally:
        control.stop()
        ws.close()
        replier.join(5)


def _answer_chats(ws: WsClient) -> None:
    """The agent's side: answer each chat message once (until the socket closes)."""
    try:
        message = ws.expect("chat.message", timeout=10)
    except TimeoutError:
        return
    ws.reply(message["call_id"], f"pong: {message['text']}", message["message_id"])


def _post(url: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(url, json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        result: dict[str, object] = json.loads(answer.read())
        return result
