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

An exception one of your handlers raises during the test fails the test with that
exception (its type, message and traceback), even when the test itself went on to fail
with a timeout waiting for the reply the handler never sent. A test that expects a
handler to raise takes the `voicesync_handler_errors` fixture (the list of what was
raised) and empties it. This module is also a pytest plugin (installed with voicesync),
which is what lets it fail the test itself rather than only its teardown.

`Scenario` (from `voicesync.scenarios`) scripts a whole call without threads or waits;
as this module is the package's pytest plugin, pytest also collects every
``*.scenario.yaml`` file as tests (see docs/testing.md).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from voicesync._fake import FakeTransport
from voicesync.client import Client
from voicesync.scenarios import Scenario, ScenarioFailed
from voicesync.scenarios._pytest import pytest_collect_file

if TYPE_CHECKING:
    from voicesync.sim import Simulator

__all__ = ["TEST_WORDS_PER_SECOND", "FakeTransport", "Scenario", "ScenarioFailed",
           "pytest_collect_file", "voicesync_client", "voicesync_handler_errors", "voicesync_sim"]

TEST_WORDS_PER_SECOND = 50.0
_HANDLER_ERRORS = pytest.StashKey[list[BaseException]]()


@pytest.fixture
def voicesync_sim() -> Iterator[Simulator]:
    """A running simulator on a free loopback port, stopped after the test."""
    from voicesync.sim import Simulator

    with Simulator(port=0, words_per_second=TEST_WORDS_PER_SECOND) as sim:
        yield sim


@pytest.fixture
def voicesync_handler_errors(request: pytest.FixtureRequest) -> list[BaseException]:
    """What your handlers raised during this test, in order (`voicesync_client`'s handlers).

    Whatever is left in the list when the test ends fails it with the first exception;
    a test that expects a handler to raise takes this fixture, checks the list and
    clears it.
    """
    errors: list[BaseException] = []
    request.node.stash[_HANDLER_ERRORS] = errors
    return errors


@pytest.fixture
def voicesync_client(voicesync_sim: Simulator, voicesync_handler_errors: list[BaseException],
                     request: pytest.FixtureRequest) -> Iterator[Client]:
    """A Client connected to `voicesync_sim`; add your agents to it. Closed after the test.

    A handler that raises fails the test with its own exception (see the module doc),
    at once: the simulator hangs up that call, so a wait for its reply ends now rather
    than at its timeout. Not in a test that takes `voicesync_handler_errors` (it expects
    handler errors and decides itself).
    """
    expected = "voicesync_handler_errors" in inspect.signature(request.function).parameters

    def failed(exc: BaseException, lane: str) -> None:
        voicesync_handler_errors.append(exc)
        if not expected:
            with contextlib.suppress(KeyError, RuntimeError):  # not a call, or already over
                voicesync_sim.call(lane).hangup("handler_error")

    client = Client(url=voicesync_sim.url, ping_interval=1.0, ping_timeout=5.0)
    client._reporter.observers.append(failed)
    client.connect(timeout=10.0)
    try:
        yield client
    finally:
        client._reporter.observers.clear()  # what the close itself provokes is not the test's
        client.close()
    _raise_handler_error(voicesync_handler_errors, None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    """Fail the test with a handler's exception rather than with what it led to."""
    failure: BaseException | None = None
    try:
        result = yield
    except BaseException as exc:  # re-raised below, outside the except: no false chaining
        failure = exc
    if not isinstance(failure, (KeyboardInterrupt, SystemExit)):
        _raise_handler_error(item.stash.get(_HANDLER_ERRORS, []), failure)
    if failure is not None:
        raise failure
    return result


def _raise_handler_error(errors: list[BaseException], failure: BaseException | None) -> None:
    if not errors:
        return
    first, more = errors[0], len(errors) - 1
    errors.clear()
    note = "raised by a voicesync handler during this test"
    if more:
        note += f"; {more} more handler error(s) followed"
    if failure is not None:
        note += f"; the test itself then failed with {failure!r}"
    add_note = getattr(first, "add_note", None)  # Python 3.11+
    if add_note is not None:
        add_note(f"({note})")
    raise first
