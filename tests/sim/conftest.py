"""Fixtures for the simulator's own suite: a running Simulator and plain WebSocket clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sim_support import WsClient

from voicesync.sim import Simulator


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(words_per_second=200) as simulator:
        yield simulator


@pytest.fixture
def make_client(sim: Simulator) -> Iterator[Callable[..., WsClient]]:
    clients: list[WsClient] = []

    def make(connect: bool = True, key: str = "test-key") -> WsClient:
        client = WsClient(sim.url)
        clients.append(client)
        if connect:
            client.connect(key)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def ws(make_client: Callable[..., WsClient]) -> WsClient:
    return make_client()
