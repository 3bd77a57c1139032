"""Reliability fixtures: a scripted peer, a fault proxy in front of it, fast-retry clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from helpers import CANARY_KEY
from reliability_peer import ScriptedPeer
from reliability_proxy import FaultProxy
from reliability_support import FAST_BACKOFF, ClientEvents

import voicesync


@pytest.fixture
def peer() -> Iterator[ScriptedPeer]:
    with ScriptedPeer() as p:
        yield p


@pytest.fixture
def proxy(peer: ScriptedPeer) -> Iterator[FaultProxy]:
    with FaultProxy(peer.address) as p:
        yield p


ClientFactory = Callable[..., voicesync.Client]


@pytest.fixture
def make_client(proxy: FaultProxy) -> Iterator[ClientFactory]:
    """Clients with the canary key, through the proxy, fast backoff and short pings."""
    made: list[voicesync.Client] = []

    def make(**options: Any) -> voicesync.Client:
        settings: dict[str, Any] = {
            "api_key": CANARY_KEY, "url": proxy.url, "ping_interval": 0.25,
            "ping_timeout": 1.0, "connect_timeout": 2.0, "backoff": FAST_BACKOFF}
        settings.update(options)
        client = voicesync.Client(**settings)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def events_of() -> Callable[[voicesync.Client], ClientEvents]:
    return ClientEvents


@pytest.fixture
def sim_proxy(sim: Any) -> Iterator[FaultProxy]:
    """A fault proxy in front of the shared `sim` simulator fixture."""
    with FaultProxy(("127.0.0.1", sim.port)) as p:
        yield p
