"""Returning callers: two simulated calls from the same number; the second starts with the first."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import CANARY_KEY, until

import voicesync
from voicesync.returning import EARLIER_ROLE, earlier_messages, restore_returning_callers

ANA = "+15550007777"


def _saved(store: voicesync.MemoryStore, number: str, count: int) -> list[dict[str, Any]]:
    def ended() -> list[dict[str, Any]]:
        records = store.find_by_contact(number, limit=10)
        return records if sum(r.get("status") == "ended" for r in records) >= count else []
    return until(ended, 5, f"{count} ended records of {number}")  # type: ignore[no-any-return]


def test_the_platforms_model_gets_the_earlier_conversation(sim: Any) -> None:
    store = voicesync.MemoryStore()
    client = voicesync.Client(api_key=CANARY_KEY, url=sim.url)
    try:
        agent = client.agent("frontdesk", llm="openai/gpt-4.1-mini", prompt="Help.",
                             history_store=store)
        restore_returning_callers(agent, conversations=2)
        started: list[str] = []  # handlers of one call run in order: the restore came first
        agent.on("call.started", lambda call: started.append(call.id))
        client.connect(timeout=5)
        agent.wait_ready(5)
        first = sim.start_call("frontdesk", from_=ANA)
        first.say("My name is Ana and I booked room twelve.")
        answer = first.wait_reply(timeout=10)
        first.hangup()
        _saved(store, ANA, 1)

        mark = sim.mark()
        second = sim.start_call("frontdesk", from_=ANA)
        restored = sim.wait_frame(event="history.set", direction="in", since=mark,
                                  call_id=second.call_id).data["messages"]
        assert restored == [
            {"role": "user", "content": "My name is Ana and I booked room twelve."},
            {"role": "assistant", "content": answer}]
        until(lambda: restored[0] in second.history, 5, "the restored turn in the model's history")

        other = sim.start_call("frontdesk", from_="+15550008888")
        until(lambda: other.call_id in started, 5, "the stranger's call.started handlers")
        second.hangup()
        other.hangup()
        assert not [f for f in sim.frames_since(mark)
                    if f.event == "history.set" and f.get("call_id") == other.call_id]
    finally:
        client.close()


def test_an_apps_own_model_gets_an_earlier_note_that_is_not_saved_again(sim: Any) -> None:
    store = voicesync.MemoryStore()
    client = voicesync.Client(api_key=CANARY_KEY, url=sim.url)
    try:
        agent = client.agent("concierge", history_store=store)
        restore_returning_callers(agent)
        seen: list[list[dict[str, Any]]] = []

        @agent.on("turn.end")
        def answer(turn: voicesync.Turn, call: voicesync.Call) -> None:
            seen.append(call.history.to_openai(system="Be brief."))
            call.reply("Noted.")

        client.connect(timeout=5)
        agent.wait_ready(5)
        first = sim.start_call("concierge", from_=ANA)
        first.say("Please wake me at seven.")
        assert first.wait_reply(timeout=10) == "Noted."
        first.hangup()
        _saved(store, ANA, 1)

        second = sim.start_call("concierge", from_=ANA)
        second.say("Did you get my request?")
        assert second.wait_reply(timeout=10) == "Noted."
        assert seen[-1][:3] == [
            {"role": "system", "content": "Be brief."},
            {"role": "system", "content": f"[{EARLIER_ROLE}] Earlier conversations with this "
                                          "caller:\ncaller: Please wake me at seven.\nyou: Noted."},
            {"role": "user", "content": "Did you get my request?"}]
        second.hangup()
        newest = _saved(store, ANA, 2)[0]
        assert newest["call_id"] == second.call_id
        assert newest["transcript"] == [{"role": "user", "content": "Did you get my request?"},
                                        {"role": "assistant", "content": "Noted."}]
    finally:
        client.close()


def test_choosing_and_trimming_the_earlier_messages() -> None:
    def record(call_id: str, *texts: str) -> dict[str, Any]:
        roles = ("user", "assistant")
        return {"call_id": call_id, "transcript": [
            {"role": roles[i % 2], "content": t} for i, t in enumerate(texts)]}

    newest_first = [record("now", "this call"), record("b", "b1", "b2"), record("a", "a1", "a2")]
    assert [m["content"] for m in earlier_messages(newest_first, skip_call_id="now")] == [
        "a1", "a2", "b1", "b2"]
    assert [m["content"] for m in earlier_messages(newest_first, skip_call_id="now",
                                                   conversations=1)] == ["b1", "b2"]
    assert [m["content"] for m in earlier_messages(newest_first, skip_call_id="now",
                                                   max_messages=3)] == ["a2", "b1", "b2"]


def test_an_agent_without_a_store_is_refused(client: voicesync.Client) -> None:
    with pytest.raises(voicesync.ConfigurationError, match="history_store"):
        restore_returning_callers(client.agent("nostore"))
