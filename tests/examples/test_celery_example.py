"""examples/celery_offload.py, run as a new user would with no keys: it starts redis-server and
two Celery workers itself, plays a call with a barge-in, stops them and exits 0."""

from __future__ import annotations

import subprocess

import pytest
from examples_support import start_example

from voicesync.celery.local import redis_server_path

LIMIT = 90.0  # it starts two worker processes: on a loaded CI machine that takes a while


@pytest.mark.skipif(redis_server_path() is None,
                    reason="redis-server is not installed (apt-get install redis-server)")
def test_the_celery_example_offloads_turns_and_the_barge_in_stops_the_worker() -> None:
    proc = start_example("celery_offload.py")
    try:
        out, err = proc.communicate(timeout=LIMIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"did not finish within {LIMIT:g} s\n--- stdout\n{out}\n--- stderr\n{err}")
    assert proc.returncode == 0, f"exited {proc.returncode}\n{out}\n{err}"
    assert "Traceback" not in err and "ERROR" not in err, err
    for line in ("bot:    Your car is covered", "[cut off by the caller]",
                 "caller: No thanks, that's all.",
                 "caller interrupted (bot.interrupted), stopped", "answered in full"):
        assert line in out, f"missing {line!r} in\n{out}"
    assert "answering in this process" not in err  # the workers answered, not the fallback
