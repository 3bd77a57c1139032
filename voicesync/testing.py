"""pytest fixtures for testing your own agent against voicesync.sim over real loopback sockets.

Use them from a ``conftest.py``::

    from voicesync.testing import voicesync_client, voicesync_sim  # noqa: F401

then, in a test::

    def test_echo(voicesync_sim, voicesync_client):
        agent = voicesync_client.add_agent(Echo())
        agent.wait_ready()
        call = voicesync_sim.start_call(agent.id)
        call.say("hello")
        assert call.wait_reply() == "You said hello"

`voicesync_sim` is a started `voicesync.sim.Simulator` (bot speech at 50 words per second,
so tests are quick; set ``voicesync_sim.words_per_second`` to change it); `voicesync_client`
is a `voicesync.Client` connected to it, closed after the test. The simulator needs the
``sim`` extra. Nothing here is imported until a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from voicesync._fake import FakeTransport
from voicesync.client import Client

if TYPE_CHECKING:
    from voicesync.sim import Simulator

__all__ = ["TEST_WORDS_PER_SECOND", "FakeTransport", "voicesync_client", "voicesync_sim"]

TEST_WORDS_PER_SECOND = 50.0


@pytest.fixture
def voicesync_sim() -> Iterator[Simulator]:
    """A running simulator on a free loopback port, stopped after the test."""
    from voicesync.sim import Simulator

    with Simulator(port=0, words_per_second=TEST_WORDS_PER_SECOND) as sim:
        yield sim


@pytest.fixture
def voicesync_client(voicesync_sim: Simulator) -> Iterator[Client]:
    """A Client connected to `voicesync_sim`; add your agents to it. Closed after the test."""
    client = Client(url=voicesync_sim.url, ping_interval=1.0, ping_timeout=5.0)
    client.connect(timeout=10.0)
    try:
        yield client
    finally:
        client.close()
