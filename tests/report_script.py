"""A user's program with no logging set up, for tests/test_loud_errors.py (run as a script).

    python report_script.py MODE [LOGGING]

MODE: ``handler`` (an on_turn that raises), ``conflict`` (a second client registers a
held agent id), ``refused`` (the key is refused on a reconnect), ``drops`` (a blocked
handler falls behind), ``tool`` (a server-side tool that raises). LOGGING: ``none``
(default), ``basicConfig`` or ``subscribe`` (``client.on("error")``). Prints
``RAISE <monotonic>`` to stdout right before the handler (or tool) raises; runs until
stdin closes.
"""

from __future__ import annotations

import logging
import sys
import threading
import time

import voicesync
from voicesync._backoff import Backoff
from voicesync.sim import Simulator


class Boom(voicesync.Agent):
    id = "boom"

    def on_turn(self, turn: voicesync.Turn, call: voicesync.Call,
                history: voicesync.History) -> None:
        print("RAISE", time.monotonic(), flush=True)
        raise ValueError("handler exploded on " + turn.text)


@voicesync.tool
def lookup(order: str) -> str:
    """Look an order up."""
    print("RAISE", time.monotonic(), flush=True)
    raise KeyError(f"no order {order}")


def main(mode: str, how: str) -> None:
    if how == "basicConfig":
        logging.basicConfig()
    with Simulator(port=0, words_per_second=50) as sim:
        client = voicesync.Client(url=sim.url, backoff=Backoff(initial=0.05, maximum=0.2))
        if how == "subscribe":
            client.on("error", lambda exc: print("GOT", type(exc).__name__, exc, flush=True))
        others: list[voicesync.Client] = []
        gate = threading.Event()
        agent = client.add_agent(Boom())
        if mode == "tool":
            agent = client.agent("shop", llm="openai/gpt-4.1-mini", prompt="Sell.",
                                 tools=[lookup])
        if mode == "drops":
            client._lanes.max_backlog = 3  # a small bound, so a handful of events overflow it
            agent.on("user.speaking", lambda event, call: gate.wait(30))
        client.connect(5)
        agent.wait_ready(5)
        if mode == "handler":
            sim.start_call("boom").say("hello")
        elif mode == "tool":
            sim.start_call("shop").send_event("llm.tool_call", msg_id="m1", tool_calls=[
                {"id": "tc_1", "name": "lookup", "arguments": '{"order": "A7"}'}])
        elif mode == "conflict":
            sim.conflict = "conflict"
            other = voicesync.Client(url=sim.url)
            others.append(other)
            other.agent("boom")
            other.connect(5)
        elif mode == "refused":
            sim.handshake = "reject"
            sim.drop()
        elif mode == "drops":
            call = sim.start_call("boom")
            for n in range(10):
                call.send_event("user.speaking", text=f"word {n}", confidence=0.5, turn_id=0)
        print("READY", flush=True)
        sys.stdin.readline()  # the test closes stdin once it has seen what it waits for
        gate.set()
        for other in others:
            other.close()
        client.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "none")
