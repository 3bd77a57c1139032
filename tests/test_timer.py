"""The one timer mechanism (`voicesync._timer`): order, its thread's lifetime, stop(), and
a client's history saves running on it until close() ends it."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from helpers import CANARY_KEY, until

import voicesync
from voicesync._timer import Timers


def _timer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "voicesync-timer"]


def test_callbacks_run_in_time_order_on_one_thread_that_ends_when_idle() -> None:
    timers = Timers(linger=0.05)
    ran: list[tuple[str, str]] = []
    done = threading.Event()

    def note(name: str) -> None:
        ran.append((name, threading.current_thread().name))
        if len(ran) == 3:
            done.set()

    timers.schedule(0.06, lambda: note("late"))
    timers.schedule(0.0, lambda: note("now"))
    timers.schedule(0.03, lambda: note("soon"))
    assert done.wait(5.0)
    assert ran == [("now", "voicesync-timer"), ("soon", "voicesync-timer"),
                   ("late", "voicesync-timer")]
    until(lambda: not timers.alive, 2.0, "the idle timer thread to end")
    timers.schedule(0.0, lambda: note("again"))  # a new thread for new work
    until(lambda: len(ran) == 4, 2.0, "work after the thread ended")


def test_a_failing_callback_is_logged_and_the_next_one_still_runs() -> None:
    timers = Timers(linger=0.05)
    ran = threading.Event()

    def boom() -> None:
        raise RuntimeError("boom")

    timers.schedule(0.0, boom)
    timers.schedule(0.0, ran.set)
    assert ran.wait(5.0)


def test_stop_runs_what_is_due_drops_the_rest_and_later_work_runs_at_once() -> None:
    timers = Timers()
    ran: list[str] = []
    gate = threading.Event()
    timers.schedule(0.0, gate.wait)  # holds the thread, so "due" is still queued at stop
    timers.schedule(0.0, lambda: ran.append("due"))
    timers.schedule(30.0, lambda: ran.append("later"))
    until(lambda: timers.alive, 2.0, "the timer thread")
    stopper = threading.Thread(target=timers.stop, args=(5.0,))
    stopper.start()
    gate.set()
    stopper.join(5.0)
    assert ran == ["due"] and not timers.alive
    timers.schedule(30.0, lambda: ran.append(threading.current_thread().name))
    assert ran == ["due", threading.current_thread().name]  # stopped: runs here, now
    assert not timers.alive


def test_a_clients_history_saves_run_on_its_timer_and_close_ends_it(sim: Any) -> None:
    saved_on: list[str] = []

    class Store(voicesync.MemoryStore):
        def save(self, record: Mapping[str, Any]) -> None:
            saved_on.append(threading.current_thread().name)
            super().save(record)

    store = Store()
    client = voicesync.Client(api_key=CANARY_KEY, url=sim.url)
    agent = client.agent("desk", history_store=store)
    client.connect(timeout=5)
    agent.wait_ready(5)
    simcall = sim.start_call("desk")
    simcall.say("hello there")
    record = until(lambda: store.load(simcall.call_id), 5.0, "a first save")
    assert record["status"] == "active"
    client.close()
    record = store.load(simcall.call_id)
    assert record is not None and record["status"] == "ended"  # saved within close()
    assert set(saved_on) == {"voicesync-timer"}
    until(lambda: not _timer_threads(), 2.0, "the client's timer thread to end")
