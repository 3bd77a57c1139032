"""LangChain: ChatOpenAI(...).stream(...) piped into the call's reply stream. The pipe stops
(and closes LangChain's stream) as soon as the caller barges in.

Run: python examples/langchain_agent.py   (needs the langchain extra: langchain-openai)
Keys: PINECALL_API_KEY (else one local simulated call), OPENAI_API_KEY (else a stand-in
model with the scripted replies below; ChatOpenAI finds it through OPENAI_BASE_URL).
"""

import functools

import voicesync
import voicesync.local
from voicesync.local import BargeIn

# A missing package raises the `pip install "voicesync[...]"` line that adds it.
with voicesync.local.needs_extra("examples/langchain_agent.py"):
    from langchain_openai import ChatOpenAI

SYSTEM = "You are a librarian answering the phone. Answer in a sentence or two."


@functools.cache
def llm() -> ChatOpenAI:
    return ChatOpenAI(model="gpt-4o-mini")  # built on first use, after the keys are known


class Librarian(voicesync.Agent):
    id = "library"
    greeting = "City library, how can I help you?"

    def on_turn(self, turn, call, history):
        # LangChain accepts the OpenAI-style message dicts the history gives.
        chunks = llm().stream(history.to_openai(system=SYSTEM))
        with call.reply_stream(turn) as stream:
            stream.pipe(chunk.content for chunk in chunks)  # stops at a barge-in


if __name__ == "__main__":
    voicesync.local.run(Librarian(), caller=[
        "Are you open on Sunday?",
        "Can I renew my books by phone?",
        BargeIn("Great, my card number is 4471.", after_words=5),
    ], stand_in=[
        "Yes, we are open on Sunday from ten until four.",
        "Yes, you can. I just need your library card number, and then I can renew every "
        "book on your account for another three weeks.",
        "Thank you, all four of your books are renewed until the end of the month.",
    ])
