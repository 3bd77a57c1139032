"""Quickstart: an echo agent. Run it: python examples/quickstart.py

Without PINECALL_API_KEY it answers one scripted call on the local simulator and exits;
with the key it registers on the platform and answers real calls until Ctrl-C.
"""

import voicesync
import voicesync.local
from voicesync.local import BargeIn


class Echo(voicesync.Agent):
    id = "echo"
    greeting = "Hi! I repeat whatever you say."

    # Runs on a voicesync handler thread, once per caller turn; it may block.
    def on_turn(self, turn, call, history):
        call.reply(f"You said: {turn.text.rstrip('.!?')}. Shall I say it again, slower?")


if __name__ == "__main__":
    voicesync.local.run(Echo(), caller=[
        "Hello there!",
        "Can you hear me?",
        BargeIn("Okay, okay, that's enough."),  # talks over the bot's answer to the line above
    ])
