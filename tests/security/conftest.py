"""Security suite fixtures: the reliability suite's scripted peer, and a canary watch.

Runnable alone: ``python -m pytest tests/security -q``. Every test runs under
`canary_watch` (autouse): every log record of every logger at every level, and the
arguments of every handler voicesync runs (events, calls, exceptions), are checked
for the canary key when the test ends.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from security_support import CanaryWatch

import voicesync.client

_RELIABILITY = Path(__file__).resolve().parent.parent / "reliability"
sys.path.insert(0, str(_RELIABILITY))

# The scripted peer, fault proxy and client factory of the reliability suite, reused.
_spec = importlib.util.spec_from_file_location("reliability_fixtures", _RELIABILITY / "conftest.py")
assert _spec is not None and _spec.loader is not None
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)
peer = _fixtures.peer
proxy = _fixtures.proxy
make_client = _fixtures.make_client


@pytest.fixture(autouse=True)
def canary_watch(monkeypatch: pytest.MonkeyPatch) -> Iterator[CanaryWatch]:
    watch = CanaryWatch()
    root = logging.getLogger()
    level = root.level
    root.addHandler(watch)
    root.setLevel(logging.DEBUG)
    run = voicesync.client.Client._run

    def spy(self: voicesync.Client, lane: str, handlers: Any, args: tuple[Any, ...],
            received_at: float, *, size: int = 0) -> None:
        watch.saw_handler_args(args)
        run(self, lane, handlers, args, received_at, size=size)

    monkeypatch.setattr(voicesync.client.Client, "_run", spy)
    try:
        yield watch
    finally:
        root.removeHandler(watch)
        root.setLevel(level)
    leaks = watch.leaks()
    assert not leaks, "the canary key leaked:\n" + "\n".join(leaks[:5])
