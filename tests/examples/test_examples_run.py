"""Every example, run as written with no keys, holds a complete call and exits 0 within 60 s.

The examples are started together (they mostly wait on paced speech), then each is checked
on its own: exit code, a clean stderr, and the lines its transcript must show.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
from examples_support import EXAMPLES, start_example

LIMIT = 60.0  # seconds, the promise made to a new user

EXPECTED: dict[str, list[str]] = {
    "quickstart.py": ["bot:    Hi! I repeat whatever you say.", "caller: Hello there!",
                      "bot:    You said: Hello there. Shall I say it again, slower?",
                      "[cut off by the caller]", "caller: Okay, okay, that's enough.",
                      "[call ended: hangup]"],
    "openai_agent.py": ["bot:    We do! A sea-view double is free tonight",
                        "[cut off by the caller]", "caller: Sorry, is the garage covered?",
                        "bot:    Yes, the garage is covered, and it is open all night."],
    "anthropic_agent.py": ["bot:    Sure, bring it in before five",
                           "[cut off by the caller]",
                           "bot:    Brake pads are extra, about twenty dollars a pair"],
    "tools_agent.py": ["Your reference is T001.",
                       "bookings: [{'reference': 'T001', 'day': 'Friday', 'time': '19:30', "
                       "'people': 4}]"],
    "threaded_worker.py": ["bot:    Let me check. Your order 1042 left our warehouse",
                           "[cut off by the caller]", "caller interrupted, stopped",
                           "answered in full"],
    "langchain_agent.py": ["bot:    Yes, we are open on Sunday", "[cut off by the caller]",
                           "all four of your books are renewed"],
    "outbound_campaign.py": ["[+15550100201] callee: Yes, I'll be there.",
                             "+15550100201: Yes, I'll be there.",
                             "+15550100202: not reached (busy)",
                             "+15550100203: No, I need to move it to next week."],
    "chat_agent.py": ["opened by u-42]", "visitor: What are your opening hours?",
                      "agent:   We are open from nine to six, Monday to Saturday.",
                      "agent:   You can return anything within 30 days, with the receipt."],
    "screening.py": ["[+15550001234 is calling +15550100001]",
                     "bot:    Let me put you through", "[+15550009999 is calling +15550100001]",
                     "[call rejected: rejected]"],
    "flask_app.py": ["HTTP POST /dial -> 201", '"direction":"outbound"',
                     "HTTP GET /calls -> 200", '"content":"Hi, what time do you close tonight?"',
                     "[call ended: hangup]"],
}


# Examples that start processes of their own (Redis, Celery workers) run in their own test,
# not in this batch: test_celery_example.py.
SEPARATE = {"celery_offload.py"}


def test_every_example_is_covered() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted({*EXPECTED, *SEPARATE})


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[str, tuple[int, str, str, float]]]:
    started = time.monotonic()
    procs = {name: start_example(name) for name in EXPECTED}
    results = {}
    try:
        for name, proc in procs.items():
            remaining = max(1.0, LIMIT - (time.monotonic() - started))
            out, err = proc.communicate(timeout=remaining)
            results[name] = (proc.returncode, out, err, time.monotonic() - started)
    except subprocess.TimeoutExpired:
        pass
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    yield results


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_without_keys(name: str, runs: dict[str, tuple[int, str, str, float]]
                                   ) -> None:
    assert name in runs, f"{name} did not finish within {LIMIT:g} s"
    code, out, err, elapsed = runs[name]
    assert code == 0, f"{name} exited {code}\n--- stdout\n{out}\n--- stderr\n{err}"
    assert "Traceback" not in err and "ERROR" not in err, err
    for line in EXPECTED[name]:
        assert line in out, f"{name}: {line!r} missing from\n{out}"
    assert out.startswith("[no PINECALL_API_KEY: a local simulated call"), out
    assert elapsed < LIMIT
