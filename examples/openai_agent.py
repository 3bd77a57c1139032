"""An OpenAI agent: the model's reply is streamed into the call token by token, a barge-in
stops it (and the HTTP stream to OpenAI), and each turn sends the history the caller heard.

Run: python examples/openai_agent.py
Keys: PINECALL_API_KEY (else one local simulated call), OPENAI_API_KEY (else a stand-in
model with the scripted replies below). voicesync.llm.OpenAIAgent does all this for you;
this file shows the parts.
"""

import functools

import voicesync
import voicesync.local
from voicesync.llm import stream_openai
from voicesync.local import BargeIn

# A missing package raises the `pip install "voicesync[...]"` line that adds it.
with voicesync.local.needs_extra("examples/openai_agent.py"):
    import openai

MODEL = "gpt-4o-mini"
INSTRUCTIONS = "You are Nova, the receptionist of the Seaside Hotel. Answer in a sentence or two."


@functools.cache
def llm() -> openai.OpenAI:
    return openai.OpenAI()  # OPENAI_API_KEY / OPENAI_BASE_URL from the environment


class Receptionist(voicesync.Agent):
    id = "receptionist"
    greeting = "Seaside Hotel, this is Nova. How can I help?"

    # A voicesync handler thread runs this for each caller turn; blocking here is fine.
    def on_turn(self, turn, call, history):
        # What was said and heard so far; a reply the caller cut off ends with a mark.
        messages = history.to_openai(system=INSTRUCTIONS)
        with call.reply_stream(turn) as stream:  # aborted by voicesync on a barge-in
            completion = llm().chat.completions.create(model=MODEL, messages=messages,
                                                       stream=True)
            stream_openai(stream, completion)  # writes deltas until done or aborted


if __name__ == "__main__":
    voicesync.local.run(Receptionist(), caller=[
        "Hi, do you have a room for tonight?",
        "What time is check-in, and is there parking?",
        BargeIn("Sorry, is the garage covered?", after_words=6),
    ], stand_in=[
        "We do! A sea-view double is free tonight, at 180 dollars with breakfast.",
        "Check-in starts at three in the afternoon. There is a private garage under the "
        "hotel with twenty spaces, it costs fifteen dollars a night, and you can book a "
        "space when you arrive at the front desk.",
        "Yes, the garage is covered, and it is open all night.",
    ])
