"""A line's menus over real sockets to voicesync.sim: `call.ask()` and `call.listen()`
wait for the keypad or the caller's speech from a handler of the same call."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import Any

import pytest
from helpers import until

import voicesync
from voicesync import ListenResult

NUMBER = "+15550002100"
Menu = Callable[[voicesync.Call], Any]


def answer_with(client: voicesync.Client, menu: Menu) -> queue.Queue[Any]:
    """A line whose calls run `menu` in their call.started handler; what it returns."""
    line = client.line(NUMBER, extension_window_ms=0)
    results: queue.Queue[Any] = queue.Queue()
    line.on("call.started", lambda call: results.put(menu(call)))
    client.connect(timeout=5)
    line.wait_ready(5)
    return results


def listening(client: voicesync.Client, call_id: str) -> voicesync.Call:
    """The line's call once a listen is open on it (keys pressed before would be lost)."""
    call: voicesync.Call = until(lambda: client.lines[NUMBER].call(call_id), 5,
                                 "the line's call")
    until(lambda: call._listens, 5, "an open listen")
    return call


def test_ask_counts_a_key_pressed_over_the_question(sim: Any, client: voicesync.Client) -> None:
    sim.words_per_second = 20.0  # the question plays for about half a second

    def menu(call: voicesync.Call) -> tuple[ListenResult, bool]:
        answer = call.ask("Press one for sales, two for the front desk, or stay on the line.",
                          digits=1, timeout=5)
        return answer, any(f.event == "bot.finished" for f in sim.frames)

    results = answer_with(client, menu)
    caller = sim.start_call(to=NUMBER)
    caller.wait_speaking(words=2)
    caller.press("2")
    answer, question_over = results.get(timeout=10)
    assert answer == ListenResult("keypad", digit="2", digits="2") and answer
    assert question_over  # returned once the line stopped speaking, not before


def test_asks_timeout_counts_from_the_end_of_the_question(
        sim: Any, client: voicesync.Client) -> None:
    sim.words_per_second = 10.0  # about a second of question, then 0.3 s to answer

    def menu(call: voicesync.Call) -> tuple[ListenResult, bool]:
        answer = call.ask("Say your name or press a key after the tone please.",
                          digits=1, timeout=0.3)
        return answer, any(f.event == "bot.finished" for f in sim.frames)

    results = answer_with(client, menu)
    sim.start_call(to=NUMBER)
    answer, question_over = results.get(timeout=10)
    assert answer == ListenResult("timeout") and not answer
    assert question_over


def test_listen_takes_keys_up_to_a_terminator_then_speech_then_times_out(
        sim: Any, client: voicesync.Client) -> None:
    sim.eager_turns = False  # an eager.turn zeroes the confidence turn.end reports (§6.1)
    asked: queue.Queue[str] = queue.Queue()

    def menu(call: voicesync.Call) -> list[ListenResult]:
        asked.put("pin")
        pin = call.listen(terminator="#", timeout=5)
        asked.put("speech")
        spoken = call.listen(digits=1, speech=True, timeout=5, language="es")
        asked.put("keys only")
        started = time.monotonic()
        ignored = call.listen(digits=1, timeout=0.3)
        assert time.monotonic() - started >= 0.3
        return [pin, spoken, ignored]

    results = answer_with(client, menu)
    caller = sim.start_call(to=NUMBER)
    assert asked.get(timeout=5) == "pin"
    listening(client, caller.call_id)
    caller.press("12#")
    assert asked.get(timeout=5) == "speech"
    listening(client, caller.call_id)
    caller.say("ventas por favor")
    assert asked.get(timeout=5) == "keys only"
    caller.say("hello?")  # speech was not asked for: the listen waits out its timeout
    pin, spoken, ignored = results.get(timeout=10)
    assert pin == ListenResult("keypad", digit="#", digits="12")
    assert spoken == ListenResult("speech", text="ventas por favor", confidence=0.95)
    assert ignored == ListenResult("timeout")
    configure = sim.wait_frame(event="session.configure", direction="in")
    assert configure.data["language"] == "es" and caller.call_id in configure.data.values()


def test_a_listen_ends_with_the_call_and_the_keys_still_reach_the_handlers(
        sim: Any, client: voicesync.Client) -> None:
    keys: queue.Queue[str] = queue.Queue()

    def menu(call: voicesync.Call) -> tuple[ListenResult, float]:
        first = call.listen(digits=3, timeout=5)
        started = time.monotonic()
        call.listen(digits=1, timeout=30)  # the caller hangs up
        return first, time.monotonic() - started

    results = answer_with(client, menu)
    client.lines[NUMBER].on("call.dtmf_received",
                            lambda event, call: keys.put(str(event.get("digit"))))
    caller = sim.start_call(to=NUMBER)
    call = listening(client, caller.call_id)
    caller.press("204")
    until(lambda: len(call._listens) == 1 and call._listens[0]._wanted == 1, 5,
          "the second listen")
    caller.hangup()
    first, waited = results.get(timeout=10)
    assert first == ListenResult("keypad", digit="4", digits="204")
    assert waited < 5  # the end of the call, not its 30 s timeout
    assert [keys.get(timeout=5) for _ in range(3)] == ["2", "0", "4"]
    assert call.listen(digits=1, timeout=5) == ListenResult("timeout")  # at once


def test_a_listen_that_could_only_time_out_is_refused() -> None:
    client = voicesync.Client(url="ws://127.0.0.1:9")
    call = voicesync.Call(client.line(NUMBER), "CA1", {})
    with pytest.raises(voicesync.ConfigurationError, match="nothing to wait for"):
        call.listen(timeout=5)
    with pytest.raises(voicesync.ConfigurationError, match="one key"):
        call.listen(terminator="##", timeout=5)
    with pytest.raises(voicesync.ConfigurationError, match="timeout"):
        call.ask("Press a key.", digits=1, timeout=0)
