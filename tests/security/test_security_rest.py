"""REST answers are data too: any JSON in any field of any resource, served over loopback
HTTP, gives a result of the documented types or a `RestError`, never a raw ValueError,
TypeError or KeyError; and every REST base URL, the knowledge-base one included, is held
to the rule that the key travels only over TLS or to loopback.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import typing
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from helpers import CANARY_KEY
from hypothesis import HealthCheck, given, settings, strategies as st
from reliability_peer import ScriptedPeer
from security_support import (
    JSON_VALUES,
    TEST_HOST,
    CanaryWatch,
    HttpEndpoint,
    conforms,
    map_test_hosts,
)

import voicesync
from voicesync import rest as rest_module
from voicesync.rest import Rest, RestError

# JSON_VALUES, plus what json.dumps writes for non-finite floats and what overflows one.
HOSTILE = JSON_VALUES | st.sampled_from([math.inf, -math.inf, math.nan, 10 ** 400, -1])
ROW_FIELDS = ("id", "voice_id", "name", "provider", "alias", "gender", "style",
              "description", "preview_url", "number", "sid", "isSdk", "status", "docCount",
              "path", "title", "bytes", "text", "score", "heading", "doc_title", "doc_path")
LANGUAGES = st.lists(HOSTILE | st.fixed_dictionaries(
    {}, optional={"code": HOSTILE, "name": HOSTILE}), max_size=3) | HOSTILE
ROW = st.fixed_dictionaries({}, optional={**dict.fromkeys(ROW_FIELDS, HOSTILE),
                                          "languages": LANGUAGES})
ROWS = st.lists(ROW | HOSTILE, max_size=3) | HOSTILE
ANSWERS = st.fixed_dictionaries({}, optional={
    "token": HOSTILE | st.just("tok_1"), "server": HOSTILE, "expires_in": HOSTILE,
    "voices": ROWS, "phones": ROWS, "phoneNumbers": ROWS,
    "success": HOSTILE | st.just(True), "balance": HOSTILE, "currency": HOSTILE,
    "knowledgeBases": ROWS, "knowledgeBase": ROW | HOSTILE, "docs": ROWS,
    "doc": ROW | HOSTILE, "hits": ROWS})


def _every_resource(rest: Rest) -> list[Callable[[], object]]:
    return [
        lambda: rest.create_token("stream", ["support", "sales"], scope="observe"),
        rest.voices, lambda: rest.voices(language="es"), rest.phone_numbers,
        rest.balance, rest.knowledge_bases, lambda: rest.create_knowledge_base("kb"),
        lambda: rest.knowledge_base("kb_1"), lambda: rest.push_doc("kb_1", "a.md", "text"),
        lambda: rest.knowledge_doc("kb_1", "doc_1"),
        lambda: rest.query_knowledge("kb_1", "q"), lambda: rest.delete_doc("kb_1", "doc_1"),
        lambda: rest.reindex_knowledge_base("kb_1"), lambda: rest.delete_knowledge_base("kb_1"),
    ]


def _assert_documented(value: object) -> None:
    """Every field of every result dataclass, nested ones too, has its annotated type."""
    if isinstance(value, (list, tuple)):
        for item in value:
            _assert_documented(item)
        return
    if value is None:
        return
    assert dataclasses.is_dataclass(value) and not isinstance(value, type), value
    hints = typing.get_type_hints(type(value), vars(rest_module))
    for field in dataclasses.fields(value):
        got = getattr(value, field.name)
        assert conforms(got, hints[field.name]), (type(value).__name__, field.name, got)
        if isinstance(got, tuple):
            _assert_documented(got)


@pytest.fixture
def api() -> Iterator[HttpEndpoint]:
    with HttpEndpoint() as endpoint:
        yield endpoint


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(answer=ANSWERS)
def test_any_value_in_any_rest_field_is_modelled_or_refused(api: HttpEndpoint,
                                                            answer: dict[str, Any]) -> None:
    """One answer holds every resource's fields; each resource reads its own, over HTTP."""
    api.body = answer
    rest = Rest(CANARY_KEY, api.url(), knowledge_url=api.url(), timeout=5.0)
    for call in _every_resource(rest):
        try:
            result = call()
        except RestError as exc:
            assert exc.status == 200 and str(exc)
            continue
        _assert_documented(result)


@pytest.mark.parametrize("raw", [
    b"[]", b"null", b"\"a string\"", b"17", b"not json", b"{\"token\": ", b"[" * 100_000,
    b"9" * 5000, b"\xff\xfe\x00garbage",
], ids=["list", "null", "string", "number", "text", "cut short", "deep", "long integer",
        "not utf-8"])
def test_an_answer_that_is_not_a_json_object_is_a_rest_error(api: HttpEndpoint,
                                                              raw: bytes) -> None:
    api.raw = raw
    rest = Rest(CANARY_KEY, api.url(), knowledge_url=api.url(), timeout=5.0)
    for call in _every_resource(rest):
        with pytest.raises(RestError, match="not a JSON object") as info:
            call()
        assert info.value.status == 200


@pytest.mark.parametrize("status", [400, 402, 404, 500])
@pytest.mark.parametrize("detail", [None, 7, ["a"], {"message": "x"}, math.inf, True])
def test_a_refusal_with_any_detail_is_a_typed_error(api: HttpEndpoint, status: int,
                                                    detail: object) -> None:
    api.reply_status = status
    api.body = {"detail": detail, "error": detail}
    with pytest.raises(RestError) as info:
        Rest(CANARY_KEY, api.url(), knowledge_url=api.url(), timeout=5.0).knowledge_bases()
    assert info.value.status == status and isinstance(info.value.server_message, str)
    assert type(info.value) is {402: voicesync.rest.UpgradeRequiredError,
                                404: voicesync.rest.NotFoundError}.get(status, RestError)


# ---------------------------------------------------------------- the knowledge-base URL


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpEndpoint]:
    """A plain HTTP endpoint on a host that does not look like loopback (evil.test)."""
    map_test_hosts(monkeypatch)
    with HttpEndpoint(body={"knowledgeBases": []}) as endpoint:
        yield endpoint


def test_a_plain_knowledge_url_off_loopback_is_refused(
        peer: ScriptedPeer, recorder: HttpEndpoint, monkeypatch: pytest.MonkeyPatch,
        make_client: Callable[..., voicesync.Client]) -> None:
    """The client's socket and REST URLs are loopback; the knowledge-base URL (from the
    environment, or passed to Rest) is plain HTTP on another host: refused before any
    request, naming where it came from."""
    evil = recorder.url("http", TEST_HOST)
    monkeypatch.setenv("PINECALL_PLAYGROUND_URL", evil)
    with pytest.raises(voicesync.ConfigurationError,
                       match=r"PINECALL_PLAYGROUND_URL.*in the clear.*allow_insecure"):
        make_client(url=peer.url)
    with pytest.raises(voicesync.ConfigurationError, match="PINECALL_PLAYGROUND_URL"):
        Rest(CANARY_KEY, peer.url.replace("ws://", "http://"))
    monkeypatch.delenv("PINECALL_PLAYGROUND_URL")
    with pytest.raises(voicesync.ConfigurationError, match=r"\(knowledge_url\)"):
        Rest(CANARY_KEY, "https://voice.example.test", knowledge_url=evil)
    assert recorder.seen() == []


def test_allow_insecure_covers_the_knowledge_url_and_names_its_host(
        peer: ScriptedPeer, recorder: HttpEndpoint, monkeypatch: pytest.MonkeyPatch,
        canary_watch: CanaryWatch, make_client: Callable[..., voicesync.Client]) -> None:
    monkeypatch.setenv("PINECALL_PLAYGROUND_URL", recorder.url("http", TEST_HOST))
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("voicesync").addHandler(handler)
    try:
        client = make_client(url=peer.url, allow_insecure=True)
    finally:
        logging.getLogger("voicesync").removeHandler(handler)
    assert [r.getMessage() for r in records] == [
        f"allow_insecure=True: the API key travels unencrypted to {TEST_HOST}"]
    assert client.rest.knowledge_bases() == []
    assert len(recorder.seen()) == 1  # the documented cost of opting out
