"""Call commands issued by a reply task in a Celery worker run on the live call in the socket
process, in order with the reply's chunks; a stale reply's commands are dropped.

Real redis-server, two real Celery worker processes, real loopback WebSockets to voicesync.sim.
"""

from __future__ import annotations

from celery_support import Rig

from voicesync.celery import Offloader
from voicesync.celery.local import _free_port


def test_a_worker_sends_dtmf_says_and_transfers_the_call_in_order(rig: Rig) -> None:
    call, turn, live = rig.first_turn()
    since = rig.sim.mark()
    handle = rig.offloader.offload(turn, live, rig.tasks.transfers, "+15550100")
    assert call.wait_ended(10.0) == "forwarded"
    assert handle.wait(5.0)
    assert rig.notes.wait(handle.message_id, "dtmf:") == "dtmf:True"
    sent = [f for f in rig.sim.frames_since(since)
            if f.direction == "in" and f.get("call_id") == call.call_id]
    order = [(f.event, f.get("action") or f.get("digits") or f.get("text") or f.get("to"))
             for f in sent if f.event != "bot.reply.stream" or f.get("action") == "chunk"]
    assert order == [("bot.reply.stream", "chunk"), ("call.dtmf", "12#"),
                     ("bot.reply", "One moment."), ("call.forward", "+15550100")]
    assert handle.stream.text == "Putting you through. "


def test_a_reply_aborted_by_a_barge_in_cannot_hang_up_the_call(rig: Rig) -> None:
    call, turn, live = rig.first_turn()
    handle = rig.offloader.offload(turn, live, rig.tasks.hangs_up_late)
    rig.notes.wait(handle.message_id, "started", timeout=10.0)
    handle.stream.abort("bot.interrupted")
    assert rig.notes.wait(handle.message_id, "hangup:") == "hangup:False"
    live.say("still here")  # the call is alive: a command on it still works
    assert not live.wait_ended(0.2) and call.status != "ended"


def test_answered_in_process_by_the_fallback_the_commands_run_on_the_call_at_once(
        rig: Rig) -> None:
    off = Offloader(f"redis://127.0.0.1:{_free_port()}/0", fallback=True)
    try:
        call, turn, live = rig.first_turn()
        handle = off.offload(turn, live, rig.tasks.transfers, "+15550100")
        assert handle.in_process
        assert call.wait_ended(10.0) == "forwarded"
    finally:
        off.close()


def test_the_relay_joins_a_run_of_one_replys_chunks_but_never_across_a_command() -> None:
    from voicesync.celery._wire import CHUNK, COMMAND, END, coalesced

    def entry(n: int, message_id: str, kind: str, text: str = "") -> tuple[str, dict[str, str]]:
        return f"1-{n}", {"m": message_id, "k": kind, "t": text}

    read = [["up", [entry(1, "a", CHUNK, "Hel"), entry(2, "a", CHUNK, "lo "),
                    entry(3, "b", CHUNK, "x"), entry(4, "a", CHUNK, "you"),
                    entry(5, "a", COMMAND, "{}"), entry(6, "a", CHUNK, "!"),
                    entry(7, "a", END)]]]
    assert list(coalesced(read)) == [
        ("1-2", ("a", CHUNK, "Hello ")), ("1-3", ("b", CHUNK, "x")),
        ("1-4", ("a", CHUNK, "you")), ("1-5", ("a", COMMAND, "{}")),
        ("1-6", ("a", CHUNK, "!")), ("1-7", ("a", END, ""))]
