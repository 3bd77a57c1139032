"""The stand-in model server on its own: formats, labels, records, disconnects, shutdown."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import anthropic
import openai
import pytest

from voicesync.sim.model import STAND_IN_HEADER, ModelRequest, ModelServer, Reply, ToolCall

USER = [{"role": "user", "content": "Is breakfast included?"}]


def _post(server: ModelServer, path: str, body: dict[str, object]) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]), timeout=5)
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    return conn.getresponse()


def test_every_response_is_labelled_as_the_stand_in(model: ModelServer) -> None:
    for body in ({"messages": USER}, {"messages": USER, "stream": True}):
        response = _post(model, "/v1/chat/completions", body)
        assert "stand-in" in response.headers[STAND_IN_HEADER]
        assert "stand-in" in response.headers["Server"]
        response.read()
    missing = _post(model, "/v1/nothing", {})
    assert missing.status == 404 and "stand-in" in missing.read().decode()


def test_non_streaming_replies_parse_in_the_real_clients(
        model: ModelServer, openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic
) -> None:
    chat = openai_client.chat.completions.create(model="m", messages=USER)
    assert chat.choices[0].message.content == (
        "You said: Is breakfast included. This is the voicesync stand-in model.")
    model.script(Reply("Checking.", tool_calls=(ToolCall("menu", {"day": "Sunday"}, id="t1"),)))
    response = openai_client.responses.create(model="m", input="hi")
    assert response.output_text == "Checking."
    assert [(o.type, getattr(o, "call_id", None)) for o in response.output] == [
        ("message", None), ("function_call", "t1")]
    message = anthropic_client.messages.create(model="m", max_tokens=10, messages=USER)
    assert message.content[0].type == "text" and message.stop_reason == "end_turn"


def test_replies_come_from_the_script_then_the_responder(model: ModelServer,
                                                         openai_client: openai.OpenAI) -> None:
    seen: list[ModelRequest] = []

    def responder(request: ModelRequest) -> str:
        seen.append(request)
        return f"echo {request.last_user_text}"

    model.responder = responder
    model.script("first")
    texts = [openai_client.chat.completions.create(
        model="m", messages=USER).choices[0].message.content for _ in range(2)]
    assert texts == ["first", "echo Is breakfast included?"]
    assert [r.body["model"] for r in model.requests] == ["m", "m"] and len(seen) == 1


def test_tokens_are_paced_at_the_configured_rate(model: ModelServer,
                                                 openai_client: openai.OpenAI) -> None:
    model.script(Reply("a b c d e f", tokens_per_second=50.0))
    started = time.monotonic()
    chunks = list(openai_client.chat.completions.create(model="m", messages=USER, stream=True))
    assert time.monotonic() - started >= 5 / 50.0
    assert model.requests[0].tokens_sent == 6 and len(chunks) == 8


def test_a_client_hang_up_during_a_stall_is_seen_at_once(model: ModelServer) -> None:
    model.script(Reply("one two three", stall_before=1, stall=30.0))
    sock = socket.create_connection(("127.0.0.1", int(model.url.rsplit(":", 1)[1])), timeout=5)
    body = json.dumps({"messages": USER, "stream": True}).encode()
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                 b"application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    record = model.wait_requests(1)[0]
    assert record.stalled.wait(5)
    hung_up = time.monotonic_ns()
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    assert record.done.wait(5)
    assert record.disconnected_ns is not None
    assert (record.disconnected_ns - hung_up) / 1e6 < 2000  # not the stall's 30 s
    assert record.tokens_sent == 1


def test_stop_is_prompt_with_a_stalled_client_and_leaves_no_threads() -> None:
    server = ModelServer(replies=[Reply("a b", stall_before=1, stall=60.0)]).start()
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="sk-dummy", max_retries=0)
    stream = client.chat.completions.create(model="m", messages=USER, stream=True)
    reader = threading.Thread(target=lambda: list(_swallow(stream)), name="test-reader")
    reader.start()
    assert server.wait_requests(1)[0].stalled.wait(5)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2.0
    reader.join(5)
    client.close()
    assert not [t.name for t in threading.enumerate() if t.name.startswith("voicesync-sim-model")]


def _swallow(stream: object) -> list[object]:
    try:
        return list(stream)
    except openai.APIError:
        return []


def test_it_binds_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        ModelServer("0.0.0.0")
