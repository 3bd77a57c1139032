"""Security basics (first written for issue 7): the key stays secret, TLS is verified,
ws:// is loopback only, inbound frames are capped, and nothing from the wire is eval'd or
used as a path.

(The suite's canary watch also fails a test if the canary key reaches any log record or
handler; these tests add repr, exception text, URLs and echo attacks.)
"""

from __future__ import annotations

import ast
import json
import socket
import ssl
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from helpers import CANARY_KEY, until
from reliability_peer import ScriptedPeer
from reliability_proxy import FaultProxy
from reliability_support import ClientEvents, LogRecords, event_is

import voicesync
from voicesync.history import JSONFileStore

PACKAGE = Path(voicesync.__file__).resolve().parent


def _no_canary(*texts: object) -> None:
    for text in texts:
        assert CANARY_KEY not in str(text), f"the key leaked into: {str(text)[:200]}"


def _exception_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc)


# ---------------------------------------------------------------- the key


def test_key_never_in_repr_url_or_upgrade_request(
        peer: ScriptedPeer, proxy: FaultProxy, make_client: Callable[..., voicesync.Client],
) -> None:
    client = make_client()
    agent = client.agent("support")
    client.connect(timeout=5.0)
    agent.wait_ready(5.0)
    peer.start_call("support", "CA1")
    call = until(lambda: agent.call("CA1"), 5.0, what="the call")
    stream = call.reply_stream(in_reply_to="")
    _no_canary(repr(client), str(client), client.url, client.http_url, repr(agent),
               repr(call), repr(stream), client.stats(), repr(agent.config))
    # The key travels only in the first frame, never in the URL or the upgrade headers.
    (path, headers), = peer.requests
    _no_canary(path, headers)
    first = peer.frames()[0].frame
    assert first == {"event": "connect", "api_key": CANARY_KEY}
    stream.abort()


@pytest.mark.parametrize("case", ["refused port", "401 upgrade", "invalid key frame"])
def test_key_never_in_exception_text(case: str, peer: ScriptedPeer) -> None:
    if case == "refused port":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            url = f"ws://127.0.0.1:{s.getsockname()[1]}"
    else:
        url = peer.url
        if case == "401 upgrade":
            peer.http_status = 401
        else:
            peer.on_connect = "invalid_key"
    client = voicesync.Client(api_key=CANARY_KEY, url=url, connect_timeout=2.0)
    with LogRecords() as logs, pytest.raises(voicesync.ConnectError) as info:
        client.connect(timeout=3.0)
    client.close()
    _no_canary(_exception_text(info.value), *logs.messages())


def test_a_server_echoing_the_key_cannot_spread_it(
        peer: ScriptedPeer, proxy: FaultProxy, make_client: Callable[..., voicesync.Client],
) -> None:
    """Error texts, unknown events, ids and payloads that carry the key back: it never
    reaches an exception, a log record or a handler."""
    client = make_client()
    events = ClientEvents(client)
    agent = client.agent("support")
    seen: list[Any] = []
    agent.on("x.note", lambda event, call: seen.append(dict(event.raw)), strict=False)
    client.connect(timeout=5.0)
    agent.wait_ready(5.0)
    peer.start_call("support", "CA1")
    peer.start_call("support", "CA2")  # call.error ends its call: not the one x.note uses
    echoes: list[dict[str, Any]] = [
        {"event": "error", "code": "BAD", "error": f"bad request from {CANARY_KEY}"},
        {"event": CANARY_KEY},
        {"event": "agent.created", "agent_id": CANARY_KEY},
        {"event": "call.error", "agent_id": "support", "call_id": "CA2",
         "error": f"oops {CANARY_KEY}"},
        {"event": "llm.tool_call", "call_id": CANARY_KEY, "msg_id": CANARY_KEY},
        {"event": "x.note", "agent_id": "support", "call_id": "CA1", "note": CANARY_KEY},
    ]
    with LogRecords() as logs:
        for frame in echoes:
            peer.send(frame)
        until(lambda: seen, 5.0, what="the echoed payload")
        events.wait("error", count=2)
    _no_canary(*logs.messages(), *seen)
    for _, args in events.of("error"):
        _no_canary(_exception_text(args[0]), getattr(args[0], "server_message", ""))
    assert seen[0]["note"] == "[redacted]"


def test_key_never_in_rest_errors(peer: ScriptedPeer,
                                  make_client: Callable[..., voicesync.Client]) -> None:
    """The REST path (token minting) with a server that echoes the bearer token."""
    peer.rest_reply = (400, {"error": f"bad bearer {CANARY_KEY}"})
    client = make_client(url=peer.url)
    agent = client.agent("support")
    client.connect(timeout=5.0)
    agent.wait_ready(5.0)
    with LogRecords() as logs, pytest.raises(voicesync.ServerError) as info:
        agent.create_token()
    _no_canary(_exception_text(info.value), info.value.server_message, *logs.messages())
    peer.rest_reply = (401, {"detail": f"who is {CANARY_KEY}?"})
    with pytest.raises(voicesync.AuthenticationError) as refused:
        agent.create_token()
    _no_canary(_exception_text(refused.value))


# ---------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_peer(ca: trustme.CA) -> Iterator[ScriptedPeer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    with ScriptedPeer(ssl_context=context) as peer:
        yield peer


def _wss(peer: ScriptedPeer) -> str:
    return f"wss://localhost:{peer.address[1]}"


def test_tls_is_verified_by_default(tls_peer: ScriptedPeer) -> None:
    """A self-signed (unknown CA) wss:// server is refused, with a clear message."""
    client = voicesync.Client(api_key=CANARY_KEY, url=_wss(tls_peer), connect_timeout=3.0)
    with pytest.raises(voicesync.ConnectError, match="certificate verification failed"):
        client.connect(timeout=5.0)
    client.close()
    assert tls_peer.handshakes == 0


def test_tls_verify_off_is_an_explicit_opt_out(tls_peer: ScriptedPeer) -> None:
    with LogRecords() as logs:
        client = voicesync.Client(api_key=CANARY_KEY, url=_wss(tls_peer), tls_verify=False)
    assert any("verification is OFF" in m for m in logs.messages())
    client.connect(timeout=5.0)
    assert client.connected
    client.close()


def test_tls_with_the_apps_own_ca_and_hostname_check(tls_peer: ScriptedPeer,
                                                     ca: trustme.CA) -> None:
    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)
    client = voicesync.Client(api_key=CANARY_KEY, url=_wss(tls_peer), ssl_context=trusted)
    client.connect(timeout=5.0)
    assert client.connected
    client.close()
    # Same CA, wrong name: a certificate for another host is refused.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("voice.example.test").configure_cert(context)
    with ScriptedPeer(ssl_context=context) as impostor:
        other = voicesync.Client(api_key=CANARY_KEY, url=_wss(impostor), ssl_context=trusted,
                                 connect_timeout=3.0)
        with pytest.raises(voicesync.ConnectError, match="certificate"):
            other.connect(timeout=5.0)
        other.close()
        assert impostor.handshakes == 0


# ---------------------------------------------------------------- plain ws://


@pytest.mark.parametrize("url", [
    "ws://example.test", "http://example.test", "ws://10.0.0.5:8765", "ws://192.168.1.2",
    "ws://127.0.0.1.example.test", "ws://localhost.example.test", "ws://[2001:db8::1]",
])
def test_plain_ws_is_refused_off_loopback(url: str) -> None:
    with pytest.raises(voicesync.ConfigurationError, match="allow_insecure"):
        voicesync.Client(api_key=CANARY_KEY, url=url)
    allowed = voicesync.Client(api_key=CANARY_KEY, url=url, allow_insecure=True)
    assert allowed.url.startswith("ws://") and not allowed.connected


@pytest.mark.parametrize("url", ["ws://127.0.0.1:1", "ws://localhost:1", "ws://[::1]:1",
                                 "ws://127.8.9.10:1", "http://localhost:1"])
def test_plain_ws_is_accepted_on_loopback(url: str) -> None:
    assert voicesync.Client(api_key=CANARY_KEY, url=url).url.startswith("ws://")


def test_default_tls_context_is_strict() -> None:
    context = voicesync.Client(api_key=CANARY_KEY, url="wss://voice.example.test")._ssl_context
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


# ---------------------------------------------------------------- frames


def test_inbound_cap_is_configurable(peer: ScriptedPeer, proxy: FaultProxy,
                                     make_client: Callable[..., voicesync.Client]) -> None:
    """1 MiB by default (scenario 9); a smaller cap is enforced the same way."""
    assert voicesync.Client(api_key=CANARY_KEY, url=peer.url).max_frame_bytes == 1 << 20
    client = make_client(max_frame_bytes=1024)
    events = ClientEvents(client)
    client.connect(timeout=5.0)
    peer.send({"event": "x.ok", "pad": "a" * 900})
    peer.send({"event": "x.big", "pad": "a" * 1024})
    assert peer.wait_closed(1, 5.0) in ([1009], [None])  # see the 1 MiB test on None
    events.wait("connected", count=2, timeout=5.0)
    assert client.stats().oversize_frames == 1


# ---------------------------------------------------------------- wire data as code or path


HOSTILE_IDS = ["../../etc/passwd", "/etc/passwd", "..", ".", "", "a/../../b", "..\\..\\win",
               "nul\x00byte", "CA" + "x" * 5000, "ünï/cødé", "~root/.ssh/authorized_keys"]


@pytest.mark.parametrize("call_id", HOSTILE_IDS)
def test_history_store_keeps_hostile_call_ids_inside_its_directory(
        tmp_path: Path, call_id: str) -> None:
    root = tmp_path / "store"
    store = JSONFileStore(root)
    path = store.path_for(call_id)
    assert path.resolve().parent == root.resolve()
    store.save({"call_id": call_id, "messages": []})
    assert store.load(call_id) == {"call_id": call_id, "messages": []}
    outside = [p for p in tmp_path.rglob("*") if root not in (p, *p.parents)]
    assert outside == []


def test_call_ids_from_the_wire_stay_inside_the_store(
        tmp_path: Path, peer: ScriptedPeer, proxy: FaultProxy,
        make_client: Callable[..., voicesync.Client]) -> None:
    """End to end: calls named by hostile ids are saved inside the store's directory."""
    root = tmp_path / "deep" / "store"
    store = JSONFileStore(root)
    client = make_client()
    agent = client.agent("support", history_store=store)
    client.connect(timeout=5.0)
    agent.wait_ready(5.0)
    hostile = ["../../escaped", "../../../../tmp/escaped-too", "/abs/escaped"]
    for call_id in hostile:
        peer.start_call("support", call_id)
        peer.turn("support", call_id, f"m-{len(call_id)}", text="hello")
        peer.send({"event": "call.ended", "agent_id": "support", "call_id": call_id,
                   "reason": "hangup"})
    until(lambda: all(store.load(c) is not None for c in hostile), 5.0, what="the saves")
    for call in hostile:
        assert store.path_for(call).resolve().parent == root.resolve()
    escaped = [p for p in tmp_path.rglob("*") if p.is_file() and root not in p.parents]
    assert escaped == []


_FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
_FORBIDDEN_ATTRS = {("pickle", "loads"), ("pickle", "load"), ("marshal", "loads"),
                    ("yaml", "load"), ("os", "system"), ("os", "popen"),
                    ("importlib", "import_module")}
# Reviewed, and not wire data: the CLI resolves subcommands from a fixed table, and
# `voicesync console` and `voicesync test` import the developer's own agent module, named on
# the command line or in the developer's own scenario file.
_ALLOWED = {("__main__.py", "importlib.import_module()"),
            ("console.py", "importlib.import_module()"),
            ("_agents.py", "importlib.import_module()")}


def test_no_eval_exec_pickle_or_shell_in_the_sdk() -> None:
    """Static guard: the SDK (not its dev-only simulator) has no dynamic code paths."""
    found: list[str] = []
    for source in sorted(PACKAGE.rglob("*.py")):
        if "sim" in source.relative_to(PACKAGE).parts:
            continue
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            fn = node.func
            where = f"{source.relative_to(PACKAGE)}:{node.lineno}"
            if isinstance(fn, ast.Name) and fn.id in _FORBIDDEN_CALLS:
                found.append(f"{where} {fn.id}()")
            if (isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name)
                    and (fn.value.id, fn.attr) in _FORBIDDEN_ATTRS
                    and (source.name, f"{fn.value.id}.{fn.attr}()") not in _ALLOWED):
                found.append(f"{where} {fn.value.id}.{fn.attr}()")
            if any(k.arg == "shell" and isinstance(k.value, ast.Constant) and k.value.value
                   for k in node.keywords):
                found.append(f"{where} shell=True")
    assert found == []


def test_wire_json_is_only_ever_parsed_as_data(
        peer: ScriptedPeer, proxy: FaultProxy, make_client: Callable[..., voicesync.Client],
        tmp_path: Path) -> None:
    """Code-looking strings in every field stay inert strings."""
    marker = tmp_path / "pwned"
    payload = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    client = make_client()
    agent = client.agent("support")
    got: list[Any] = []
    agent.on("turn.end", lambda turn, call: got.append(turn.text))
    client.connect(timeout=5.0)
    agent.wait_ready(5.0)
    peer.start_call("support", payload)
    peer.turn("support", payload, payload, text=payload)
    until(lambda: got, 5.0, what="the turn")
    assert got == [payload] and not marker.exists()
    peer.send(json.dumps({"event": payload, "call_id": payload, "agent_id": payload}))
    peer.send({"event": "ping"})
    peer.wait_frame(event_is("pong"), 5.0)
    assert not marker.exists()
