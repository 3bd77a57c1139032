"""An Anthropic agent: Claude's reply is streamed into the call token by token, a barge-in
stops it (and the HTTP stream to Anthropic), and each turn sends the history the caller heard.

Run: python examples/anthropic_agent.py
Keys: PINECALL_API_KEY (else one local simulated call), ANTHROPIC_API_KEY (else a stand-in
model with the scripted replies below). voicesync.llm.AnthropicAgent does all this for you.
"""

import functools

import voicesync
import voicesync.local
from voicesync.llm import stream_anthropic
from voicesync.local import BargeIn

# A missing package raises the `pip install "voicesync[...]"` line that adds it.
with voicesync.local.needs_extra("examples/anthropic_agent.py"):
    import anthropic

MODEL = "claude-haiku-4-5"
INSTRUCTIONS = "You are Max, a bike shop's phone assistant. Answer in a sentence or two."


@functools.cache
def llm() -> anthropic.Anthropic:
    return anthropic.Anthropic()  # ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL from the environment


class BikeShop(voicesync.Agent):
    id = "bike-shop"
    greeting = "Hi, Spoke and Chain, Max speaking. What can I do for you?"

    # A voicesync handler thread runs this for each caller turn; blocking here is fine.
    def on_turn(self, turn, call, history):
        # Anthropic wants alternating turns starting with the user: to_anthropic() does that.
        messages = history.to_anthropic()
        with call.reply_stream(turn) as stream:  # aborted by voicesync on a barge-in
            reply = llm().messages.create(model=MODEL, max_tokens=300, system=INSTRUCTIONS,
                                          messages=messages, stream=True)
            stream_anthropic(stream, reply)  # writes deltas until done or aborted


if __name__ == "__main__":
    voicesync.local.run(BikeShop(), caller=[
        "Hi, can you fix a flat tire today?",
        "How much is a full service?",
        BargeIn("Wait, does that include new brake pads?", after_words=6),
    ], stand_in=[
        "Sure, bring it in before five and it will be ready within the hour.",
        "A full service is ninety dollars. We true the wheels, adjust the gears and the "
        "brakes, clean and oil the chain, and check every bolt on the frame.",
        "Brake pads are extra, about twenty dollars a pair, fitted for free.",
    ])
