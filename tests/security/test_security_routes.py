"""Every hop is checked: the key travels only over TLS or to loopback, on every route.

Routes: the socket URL, the REST base URL, a redirect during the WebSocket upgrade, a
redirect of a REST call, and a proxy taken from the environment. Hosts that must not
look like loopback (``evil.test``) are mapped to 127.0.0.1 inside each test.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterator

import pytest
import trustme
from helpers import CANARY_KEY
from reliability_peer import ScriptedPeer
from security_support import TEST_HOST, CanaryWatch, HttpEndpoint, Tunnel, map_test_hosts

import voicesync


@pytest.fixture(autouse=True)
def _test_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    map_test_hosts(monkeypatch)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def evil() -> Iterator[ScriptedPeer]:
    """Where a redirect points: a platform peer that would accept the key."""
    with ScriptedPeer() as peer:
        yield peer


@pytest.fixture
def recorder() -> Iterator[HttpEndpoint]:
    """A plain HTTP endpoint (or proxy) that records what reaches it."""
    with HttpEndpoint() as endpoint:
        yield endpoint


def _bearer_requests(endpoint: HttpEndpoint) -> list[str]:
    return [path for _, path, headers in endpoint.seen()
            if CANARY_KEY in headers.get("Authorization", "")]


# ---------------------------------------------------------------- the WebSocket upgrade


@pytest.mark.parametrize("target", ["ws://{evil}:{port}/client", "ws://127.0.0.1:{port}/client",
                                    "wss://{evil}:{port}/client"],
                         ids=["plain, another host", "plain, loopback", "TLS, another host"])
def test_a_redirect_during_the_upgrade_is_not_followed(
        evil: ScriptedPeer, target: str) -> None:
    location = target.format(evil=TEST_HOST, port=evil.address[1])
    with HttpEndpoint(redirect_to=location) as redirector:
        client = voicesync.Client(api_key=CANARY_KEY, url=redirector.url("ws"),
                                  connect_timeout=3.0)
        with pytest.raises(voicesync.ConnectError, match="redirect") as info:
            client.connect(timeout=5.0)
        client.close()
        assert len(redirector.seen()) == 1
    assert "set url= to the final address" in str(info.value)
    assert evil.connections == 0 and evil.frames() == []


def test_a_tls_endpoint_cannot_redirect_the_key_to_plain_ws(
        evil: ScriptedPeer, ca: trustme.CA) -> None:
    """The configured URL is wss://, the redirect a downgrade to ws:// on another host."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost").configure_cert(server)
    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)
    location = f"ws://{TEST_HOST}:{evil.address[1]}/client"
    with HttpEndpoint(redirect_to=location, ssl_context=server) as redirector:
        client = voicesync.Client(api_key=CANARY_KEY, url=redirector.url("wss", "localhost"),
                                  ssl_context=trusted, connect_timeout=3.0)
        with pytest.raises(voicesync.ConnectError, match="redirect"):
            client.connect(timeout=5.0)
        client.close()
        assert len(redirector.seen()) == 1  # TLS was verified and the upgrade was sent
    assert evil.connections == 0


# ---------------------------------------------------------------- the REST base URL


@pytest.mark.parametrize("http_url", [f"http://{TEST_HOST}", "http://10.0.0.5:8080",
                                      "http://localhost.example.test"])
def test_plain_http_rest_off_loopback_is_refused(http_url: str) -> None:
    with pytest.raises(voicesync.ConfigurationError, match="allow_insecure"):
        voicesync.Client(api_key=CANARY_KEY, url="wss://voice.example.test", http_url=http_url)


@pytest.mark.parametrize("http_url", ["https://rest.example.test", "http://127.0.0.1:1",
                                      "http://localhost:1", "http://[::1]:1"])
def test_tls_or_loopback_rest_is_accepted(http_url: str) -> None:
    client = voicesync.Client(api_key=CANARY_KEY, url="wss://voice.example.test",
                              http_url=http_url)
    assert client.http_url == http_url


def test_create_token_never_sends_the_key_over_plain_http_off_loopback(
        peer: ScriptedPeer, recorder: HttpEndpoint,
        make_client: Callable[..., voicesync.Client]) -> None:
    """The socket is loopback (allowed); the REST URL is plain HTTP on another host."""
    evil_rest = recorder.url("http", TEST_HOST)
    with pytest.raises(voicesync.ConfigurationError, match="in the clear"):
        make_client(url=peer.url, http_url=evil_rest)
    assert recorder.seen() == []


def test_allow_insecure_is_an_explicit_opt_out_that_warns_once_naming_the_host(
        peer: ScriptedPeer, recorder: HttpEndpoint, canary_watch: CanaryWatch,
        make_client: Callable[..., voicesync.Client]) -> None:
    evil_rest = recorder.url("http", TEST_HOST)
    before = len(canary_watch.texts)
    client = make_client(url=peer.url, http_url=evil_rest, allow_insecure=True)
    warnings = [t for t in canary_watch.texts[before:] if "WARNING" in t]
    assert len(warnings) == 1 and TEST_HOST in warnings[0] and "allow_insecure" in warnings[0]
    agent = client.agent("support")
    client.connect(timeout=5.0)
    assert agent.create_token(timeout=5.0) == "tok_from_endpoint"
    assert _bearer_requests(recorder) != []  # the documented cost of opting out


def test_allow_insecure_socket_warns_naming_the_host() -> None:
    logger = logging.getLogger("voicesync")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        voicesync.Client(api_key=CANARY_KEY, url="ws://voice.example.test", allow_insecure=True)
        voicesync.Client(api_key=CANARY_KEY, url="wss://voice.example.test", allow_insecure=True)
    finally:
        logger.removeHandler(handler)
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert warnings == ["allow_insecure=True: the API key travels unencrypted to "
                        "voice.example.test"]


# ---------------------------------------------------------------- REST redirects


@pytest.mark.parametrize("target", ["http://{evil}:{port}/webrtc/token",
                                    "http://127.0.0.1:{port}/webrtc/token"],
                         ids=["another host", "loopback, another port"])
def test_a_rest_redirect_is_not_followed(
        peer: ScriptedPeer, recorder: HttpEndpoint,
        make_client: Callable[..., voicesync.Client], target: str) -> None:
    location = target.format(evil=TEST_HOST, port=recorder.port)
    with HttpEndpoint(redirect_to=location, status=307) as redirector:
        client = make_client(url=peer.url, http_url=redirector.url())
        agent = client.agent("support")
        client.connect(timeout=5.0)
        with pytest.raises(voicesync.ConnectError, match="redirect"):
            agent.create_token(timeout=5.0)
        assert len(_bearer_requests(redirector)) == 1  # the configured host, and only it
    assert recorder.seen() == []


# ---------------------------------------------------------------- proxies


def test_loopback_rest_never_goes_through_a_proxy_from_the_environment(
        peer: ScriptedPeer, recorder: HttpEndpoint, monkeypatch: pytest.MonkeyPatch,
        make_client: Callable[..., voicesync.Client]) -> None:
    """A plain-HTTP request to loopback through a proxy would leave the machine in the
    clear; https requests do use the proxy (CONNECT keeps TLS end to end)."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, recorder.url("http", TEST_HOST))
    peer.rest_reply = (200, {"token": "tok_from_peer"})
    client = make_client(url=peer.url)
    agent = client.agent("support")
    client.connect(timeout=5.0)
    assert agent.create_token(timeout=5.0) == "tok_from_peer"
    assert recorder.seen() == []


def test_a_plain_loopback_socket_never_goes_through_a_proxy_from_the_environment(
        peer: ScriptedPeer, recorder: HttpEndpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    """websocket-client would tunnel ws://127.0.0.1 through $http_proxy, and the proxy
    would read the key in the connect frame."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", recorder.url("http", TEST_HOST))
    client = voicesync.Client(api_key=CANARY_KEY, url=peer.url, connect_timeout=3.0)
    client.connect(timeout=5.0)
    client.close()
    assert recorder.seen() == []
    assert peer.frames()[0].frame == {"event": "connect", "api_key": CANARY_KEY}


def test_a_tls_socket_goes_through_the_https_proxy_and_the_proxy_never_sees_the_key(
        ca: trustme.CA, monkeypatch: pytest.MonkeyPatch) -> None:
    """wss:// honours https_proxy with a CONNECT tunnel: TLS (verified as usual) runs end
    to end, and the proxy learns the host name only."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost").configure_cert(server)
    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)
    with ScriptedPeer(ssl_context=server) as peer, Tunnel(peer.address) as tunnel:
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("https_proxy", tunnel.url)
        client = voicesync.Client(api_key=CANARY_KEY, url=f"wss://localhost:{peer.address[1]}",
                                  ssl_context=trusted, reconnect=False, connect_timeout=3.0)
        client.connect(timeout=5.0)
        client.close()
        assert tunnel.asked == [f"CONNECT localhost:{peer.address[1]} HTTP/1.1".encode()]
        assert peer.frames()[0].frame == {"event": "connect", "api_key": CANARY_KEY}
        assert len(tunnel.carried) > 0 and CANARY_KEY.encode() not in tunnel.carried
