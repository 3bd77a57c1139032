"""voicesync.testing: the fixtures a user imports into a conftest to test their own agent."""

from __future__ import annotations

import voicesync
from voicesync.sim import Simulator


class Echo(voicesync.Agent):
    id = "echo"

    def on_turn(self, turn: voicesync.Turn, call: voicesync.Call,
                history: voicesync.History) -> None:
        call.reply("You said " + turn.text)


def test_the_documented_example(voicesync_sim: Simulator,
                                voicesync_client: voicesync.Client) -> None:
    agent = voicesync_client.add_agent(Echo())
    agent.wait_ready()
    call = voicesync_sim.start_call(agent.id)
    call.say("hello")
    assert call.wait_reply() == "You said hello"


def test_the_client_is_connected_to_the_simulator(voicesync_sim: Simulator,
                                                  voicesync_client: voicesync.Client) -> None:
    assert voicesync_client.connected
    assert voicesync_client.url == voicesync_sim.url + "/client"
