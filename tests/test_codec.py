"""The wire codec: config encoding byte for byte, frame decoding, slugs."""

from __future__ import annotations

import json

import pytest

from voicesync import _codec
from voicesync.errors import ConfigurationError, ProtocolError

# The locked snapshot of docs/protocol.md §3.1, written with voicesync's snake_case names.
SNAPSHOT = (
    '{"voice":"elevenlabs/sarah","language":"es","flash":true,'
    '"stt":{"provider":"deepgram","model":"nova-3","language":"es"},'
    '"interruption":{"minWords":2},"llm":"openai/gpt-4.1-mini","prompt":"You are Clara.",'
    '"vars":{"name":"Ana"},"greeting":"Hola!","greetingInChat":true,'
    '"memory":{"remember":["name"],"consolidate":"turn"},"timezone":"Europe/Madrid",'
    '"preparing":{"enabled":true,"timeout_ms":2500},"raw_prompt":true,'
    '"tools":[{"type":"function","function":{"name":"lookup"}}],"skills":[{"name":"booking"}],'
    '"session_limits":{"maxDurationMs":60000},"config":{"language":"es"},'
    '"knowledge_base":["kb_a","kb_b"],"mode":"chat","media":{"video":false}}'
)


def test_config_encodes_in_locked_order_byte_for_byte() -> None:
    config = dict(  # given in a scrambled order on purpose
        media={"video": False}, mode="chat", knowledge_base=["kb_a", "kb_b"],
        config={"language": "es"}, session_limits={"maxDurationMs": 60000},
        skills=[{"name": "booking"}], tools=[{"type": "function", "function": {"name": "lookup"}}],
        raw_prompt=True, preparing={"enabled": True, "timeoutMs": 2500},
        timezone="Europe/Madrid", memory={"remember": ["name"], "consolidate": "turn"},
        greeting_in_chat=True, greeting={"text": "Hola!"}, prompt_vars={"name": "Ana"},
        prompt="You are Clara.", llm="openai/gpt-4.1-mini", interruption={"minWords": 2},
        stt="deepgram:nova-3:es", flash=True, language="es", voice="elevenlabs/sarah",
    )
    assert _codec.dumps(_codec.encode_config(config)) == SNAPSHOT


@pytest.mark.parametrize(("stt", "wire"), [
    ("deepgram", "deepgram"),
    ("deepgram/flux", "deepgram/flux"),
    ("deepgram:nova-3", {"provider": "deepgram", "model": "nova-3"}),
    ("deepgram::es", {"provider": "deepgram", "language": "es"}),
    ("deepgram/nova-3:es", {"provider": "deepgram/nova-3", "model": "es"}),
])
def test_stt_shorthand(stt: str, wire: object) -> None:
    assert _codec.encode_config({"stt": stt}) == {"stt": wire}


def test_unset_and_function_greetings_are_omitted_false_kept() -> None:
    assert _codec.encode_config({"voice": None, "flash": False, "greeting": lambda c: "x"}) == {
        "flash": False}


def test_unknown_option_names_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown agent option.*vocie"):
        _codec.check_config({"vocie": "x"})


def test_agent_create_puts_agent_id_first_and_origins_last() -> None:
    frame = _codec.agent_create("support", {"language": "en", "voice": "v"}, ["https://a"])
    assert _codec.dumps(frame) == (
        '{"event":"agent.create","agent_id":"support","voice":"v","language":"en",'
        '"allowed_origins":["https://a"]}')


@pytest.mark.parametrize("text", [
    "not json", "[1,2]", '"s"', "{}", '{"event": 3}', '{"event":"x","v":NaN}',
    '{"event":"x","v":Infinity}', "[" * 5000 + "]" * 5000, '{"event":"x","n":' + "9" * 5000 + "}",
])
def test_bad_frames_raise_protocol_error(text: str) -> None:
    with pytest.raises(ProtocolError):
        _codec.loads(text)


def test_good_frame_decodes() -> None:
    assert _codec.loads('{"event":"ping"}') == {"event": "ping"}


@pytest.mark.parametrize(("raw", "slug"), [
    ("futbolAgent", "futbolagent"), ("My Agent", "my-agent"), ("a__b--c", "a-b-c"),
    ("-x!y-", "xy"),
])
def test_slugify(raw: str, slug: str) -> None:
    assert _codec.slugify(raw) == slug


def test_tool_calls_accept_both_shapes() -> None:
    event = _codec.event({"event": "llm.tool_call", "call_id": "c", "msg_id": "m", "tool_calls": [
        {"id": "1", "name": "a", "arguments": '{"x":1}'},
        {"id": "2", "function": {"name": "b", "arguments": {"y": 2}}},
        {"id": "3", "name": "c"},
    ]})
    calls = event.tool_calls  # type: ignore[attr-defined]
    assert [(c.id, c.name, json.loads(c.arguments)) for c in calls] == [
        ("1", "a", {"x": 1}), ("2", "b", {"y": 2}), ("3", "c", {})]


def test_stream_frames_follow_the_rules() -> None:
    assert _codec.dumps(_codec.stream_frame("C", "M", "start", in_reply_to="U")) == (
        '{"event":"bot.reply.stream","call_id":"C","message_id":"M","action":"start",'
        '"in_reply_to":"U"}')
    assert _codec.dumps(_codec.stream_frame("C", "M", "chunk", token="hi")) == (
        '{"event":"bot.reply.stream","call_id":"C","message_id":"M","action":"chunk",'
        '"token":"hi"}')
