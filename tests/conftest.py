"""Shared fixtures: a simulator per test, a client with a canary key, and the canary check.

Every test that uses `client` talks over a real loopback WebSocket to `voicesync.sim`.
All voicesync log records of the whole run are kept at DEBUG, and the session fails
if the canary API key shows up in any of them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import CANARY_KEY

import voicesync


class _Keeper(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a record that cannot format is not ours to judge
            return
        if CANARY_KEY in text:
            self.leaks.append(text[:300])


_KEEPER = _Keeper()
_KEEPER.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))


def pytest_configure(config: pytest.Config) -> None:
    root = logging.getLogger("voicesync")
    root.addHandler(_KEEPER)
    root.setLevel(logging.DEBUG)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _KEEPER.leaks:
        session.exitstatus = 1
        print("\nAPI KEY LEAKED INTO LOG RECORDS:\n" + "\n".join(_KEEPER.leaks[:5]))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", help="run the long fault-injection soak")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--soak"):
        return
    skip = pytest.mark.skip(reason="soak: run with --soak")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def sim() -> Iterator[Any]:
    from voicesync.sim import Simulator

    with Simulator(port=0, words_per_second=200.0) as simulator:
        yield simulator


@pytest.fixture
def thread_baseline() -> Iterator[set[str]]:
    """Names of voicesync threads alive before the test; the test may compare after close."""
    yield {t.name for t in threading.enumerate() if t.name.startswith("voicesync-")}


@pytest.fixture
def client(sim: Any) -> Iterator[voicesync.Client]:
    c = voicesync.Client(api_key=CANARY_KEY, url=sim.url, ping_interval=1.0, ping_timeout=3.0)
    yield c
    c.close()
