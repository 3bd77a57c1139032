"""Redaction: one function (`voicesync._log.redact`) removes the key in every form a
server can echo it, and every place wire text reaches a person goes through it.

The unit tests feed `redact` each form; the behaviour tests have a scripted peer echo
the key in a close reason, an error frame, event fields and a stored transcript, and
the suite's canary watch asserts it reaches no log record, handler or exception.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import CANARY_KEY, until
from hypothesis import given, settings, strategies as st
from reliability_peer import ScriptedPeer
from reliability_support import ClientEvents
from security_support import CanaryWatch, describe

import voicesync
from voicesync._log import FRAGMENT, REDACTED, redact
from voicesync.history import JSONFileStore

KEY = CANARY_KEY


def _u(text: str) -> str:
    return "".join(f"\\u{ord(c):04x}" for c in text)


def _pct(text: str) -> str:
    return "".join(f"%{ord(c):02X}" for c in text)


_UNESCAPE = re.compile(r"\\{1,2}u([0-9a-fA-F]{4})|%([0-9a-fA-F]{2})|\\(/)")


def _decoded(text: str) -> str:
    """The text as a reader would see it after undoing every escape."""
    return _UNESCAPE.sub(lambda m: m.group(3) or chr(int(m.group(1) or m.group(2), 16)), text)


def _reveals_key(text: str) -> bool:
    """True if any FRAGMENT-long run of the key can be read out of `text`, in any form."""
    views = [text, _decoded(text), _decoded(_decoded(text))]
    for token in re.findall(r"[A-Za-z0-9+/_-]{8,}={0,2}", text):
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            for pad in ("", "=", "=="):
                with contextlib.suppress(ValueError):
                    views.append(decode(token + pad).decode("latin-1"))
    for token in re.findall(r"[0-9a-fA-F]{16,}", text):
        views.append(bytes.fromhex(token[: len(token) // 2 * 2]).decode("latin-1"))
    grams = {KEY[i:i + FRAGMENT] for i in range(len(KEY) - FRAGMENT + 1)}
    return any(gram in view for view in views for gram in grams)


FORMS: dict[str, str] = {
    "plain": KEY,
    "inside a longer token": f"tok_{KEY}_suffix",
    "glued to words": f"Bearer{KEY}was refused",
    "JSON string": json.dumps({"error": f"bad key {KEY}"}),
    "JSON with every char \\u-escaped": '{"error":"' + _u(KEY) + '"}',
    "JSON with upper-case hex escapes": '{"error":"' + _u(KEY).upper().replace("\\U", "\\u") + '"}',
    "JSON with some chars escaped": "".join(_u(c) if i % 3 == 0 else c
                                            for i, c in enumerate(KEY)),
    "unicode-escaped inside JSON (\\\\u)": json.dumps(_u(KEY)),
    "percent-encoded (every char)": _pct(KEY),
    "percent-encoded (reserved chars)": urllib.parse.quote(f"key={KEY}&x=1", safe=""),
    "percent-encoded, lower-case hex": _pct(KEY).lower(),
    "in a URL query": f"https://voice.example.test/x?api_key={urllib.parse.quote(KEY)}",
    "base64": base64.b64encode(KEY.encode()).decode(),
    "base64 inside basic auth (offset 1)": base64.b64encode(f"u:{KEY}".encode()).decode(),
    "base64 offset 2": base64.b64encode(f"ab:{KEY}zz".encode()).decode(),
    "base64 offset 0 with a prefix": base64.b64encode(f"abc{KEY}".encode()).decode(),
    "URL-safe base64": base64.urlsafe_b64encode(f"u:{KEY}".encode()).decode(),
    "hex": KEY.encode().hex(),
    "hex, upper-case": KEY.encode().hex().upper(),
    "split across two JSON fields": json.dumps({"a": KEY[:13], "b": KEY[13:]}),
    "split unevenly": json.dumps({"a": KEY[:FRAGMENT], "b": KEY[FRAGMENT:]}),
    "repeated": KEY * 3,
    "a credential field": '{"event":"connect","api_key":"something-else-entirely"}',
}


@pytest.mark.parametrize("text", FORMS.values(), ids=FORMS.keys())
def test_redact_removes_every_form_of_the_key(text: str) -> None:
    redacted = redact(text, KEY)
    assert REDACTED in redacted
    assert not _reveals_key(redacted), redacted
    assert "something-else-entirely" not in redacted


def test_redact_keeps_json_valid_and_other_text_intact() -> None:
    frame = json.dumps({"event": "error", "error": f"key {KEY} refused", "code": "X"})
    escaped = '{"event":"error","error":"key ' + _u(KEY) + ' refused","code":"X"}'
    for text in (frame, escaped):
        assert json.loads(redact(text, KEY)) == {
            "event": "error", "error": f"key {REDACTED} refused", "code": "X"}


def test_short_fragments_and_short_keys_are_left_alone() -> None:
    """The documented limit: runs shorter than FRAGMENT are ordinary text."""
    short = KEY[:FRAGMENT - 1]
    assert redact(f"prefix {short} suffix", KEY) == f"prefix {short} suffix"
    assert redact("the key is right", "right") == "the key is right"  # < MIN_SECRET


_CHAR_FORMS = st.sampled_from(["plain", "u", "uu", "pct", "PCT"])


def _encode_char(char: str, form: str) -> str:
    return {"plain": char, "u": f"\\u{ord(char):04x}", "uu": f"\\\\u{ord(char):04X}",
            "pct": f"%{ord(char):02x}", "PCT": f"%{ord(char):02X}"}[form]


@settings(max_examples=300, deadline=None)
@given(before=st.text(max_size=40), after=st.text(max_size=40),
       forms=st.lists(_CHAR_FORMS, min_size=len(KEY), max_size=len(KEY)))
def test_any_mix_of_escapes_around_any_text_is_redacted(
        before: str, after: str, forms: list[str]) -> None:
    echoed = "".join(_encode_char(c, f) for c, f in zip(KEY, forms, strict=True))
    assert not _reveals_key(redact(before + echoed + after, KEY))


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200))
def test_text_without_the_key_is_unchanged(text: str) -> None:
    assert redact(text, KEY) == text


# ------------------------------------------------------------------ behaviour


def _connected(make_client: Callable[..., voicesync.Client]) -> tuple[voicesync.Agent,
                                                                       ClientEvents]:
    client = make_client()
    events = ClientEvents(client)
    agent = client.agent("support")
    client.connect(timeout=5.0)
    agent.wait_ready(5.0)
    return agent, events


@pytest.mark.parametrize("reason", [f"bye {KEY}", _pct(KEY), f"{KEY[:12]} {KEY[12:]}"],
                         ids=["plain", "percent-encoded", "split"])
def test_a_close_reason_echoing_the_key_is_redacted(
        peer: ScriptedPeer, make_client: Callable[..., voicesync.Client], reason: str,
        canary_watch: CanaryWatch) -> None:
    agent, events = _connected(make_client)
    peer.start_call("support", "CA1")
    ended: list[str] = []
    agent.on("call.ended", lambda call, why: ended.append(why))
    until(lambda: agent.call("CA1"), 5.0, what="the call")
    peer.close(4000, reason)
    _, (why,) = events.wait("disconnected")
    until(lambda: ended, 5.0, what="the call's end")
    assert REDACTED in why and not _reveals_key(why)
    assert ended == [why]
    events.wait("connected", count=2)  # and it reconnected as usual
    assert canary_watch.records > 0 and canary_watch.events > 0


def test_a_1008_close_echoing_the_key_gives_a_clean_authentication_error(
        peer: ScriptedPeer, make_client: Callable[..., voicesync.Client]) -> None:
    peer.on_connect = "silent"
    reason = f"unknown key {KEY} ({base64.b64encode(KEY.encode()).decode()})"
    closer = threading.Thread(target=lambda: (
        peer.wait_frame(lambda rx: rx.frame.get("event") == "connect", 5.0),
        peer.close(1008, reason)), daemon=True)
    closer.start()
    client = make_client()
    with pytest.raises(voicesync.AuthenticationError) as info:
        client.connect(timeout=5.0)
    closer.join(5.0)
    assert not _reveals_key(describe(info.value))
    assert REDACTED in str(info.value)


ERROR_FRAMES = {
    "JSON-escaped in an error frame":
        '{"event":"error","code":"BAD","error":"bad key ' + _u(KEY) + '"}',
    "plain in a call.error":
        json.dumps({"event": "call.error", "call_id": "CA1", "error": f"oops {KEY}"}),
    "INVALID_KEY naming it":
        json.dumps({"event": "error", "code": "INVALID_KEY", "error": f"{KEY} is invalid"}),
}


@pytest.mark.parametrize("frame", ERROR_FRAMES.values(), ids=ERROR_FRAMES.keys())
def test_an_error_frame_echoing_the_key_is_redacted(
        peer: ScriptedPeer, make_client: Callable[..., voicesync.Client], frame: str) -> None:
    agent, events = _connected(make_client)
    peer.start_call("support", "CA1")
    until(lambda: agent.call("CA1"), 5.0, what="the call")
    peer.send(frame)
    _, (error,) = events.wait("error")
    assert isinstance(error, voicesync.VoiceSyncError)
    assert not _reveals_key(describe(error))
    if isinstance(error, voicesync.ServerError):
        assert REDACTED in error.server_message


def test_event_fields_and_the_stored_transcript_never_hold_the_key(
        peer: ScriptedPeer, make_client: Callable[..., voicesync.Client],
        tmp_path: Path) -> None:
    """Every echo form in event fields, a turn's text and the history store."""
    store = JSONFileStore(tmp_path)
    client = make_client()
    agent = client.agent("support", history_store=store)
    seen: list[Any] = []
    agent.on("x.note", lambda event, call: seen.append(event), strict=False)
    turns: list[Any] = []
    agent.on("turn.end", lambda turn, call: turns.append(turn))
    client.connect(timeout=5.0)
    agent.wait_ready(5.0)
    peer.start_call("support", "CA1")
    notes = {name: text for name, text in FORMS.items() if name != "a credential field"}
    for name, text in notes.items():
        peer.send(json.dumps({"event": "x.note", "call_id": "CA1", "name": name,
                              "note": text, "nested": {"list": [text]}, text: 1}))
    peer.turn("support", "CA1", "m1", text=f"my key is {KEY}, also {_pct(KEY)}")
    until(lambda: len(seen) == len(notes) and turns, 5.0, what="the notes and the turn")
    for event in seen:
        assert not _reveals_key(describe(event)), event.raw["name"]
    assert turns[0].text.startswith(f"my key is {REDACTED}")
    peer.send({"event": "call.ended", "call_id": "CA1", "reason": f"hangup {KEY}"})
    until(lambda: store.load("CA1") is not None, 5.0, what="the saved transcript")
    saved = "".join(p.read_text(encoding="utf-8") for p in tmp_path.rglob("*") if p.is_file())
    assert "my key is" in saved and not _reveals_key(saved)
