"""`python -m voicesync demo`: a scripted call to a streaming voicesync agent, on the simulator.

Everything runs in this process over loopback sockets: the simulated platform, a small
agent streaming each reply token by token from the stand-in model (through the real
``openai`` client when the ``llm`` extra is installed, else a plain token generator), and a
caller who asks two questions, cuts the bot off mid-sentence and hangs up. The transcript
is printed as it is spoken, then the latencies measured on the simulator's frame record.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import voicesync
from voicesync.local import BargeIn, Session

GREETING = "Hi, you have reached the voicesync demo line. Ask me anything!"
CALLER: list[Any] = [
    "What is voicesync?",
    "How does it handle interruptions?",
    BargeIn("Sorry to cut you off, that makes sense. Thanks, bye!", after_words=7),
]
ANSWERS = [
    "It is a synchronous Python SDK for realtime voice agents. You bring the model, and it "
    "handles the call.",
    "When you talk over me, the platform stops my speech at once. voicesync then aborts my "
    "reply stream and closes the model's stream, so not one more token is generated.",
    "No problem at all. Thanks for calling, goodbye!",
]
SLOW = 4.0  # tokens/s of the answer that gets cut: still streaming when the caller barges in


def _script(model: Any) -> None:
    from voicesync.sim.model import Reply

    model.script(*(Reply(text, tokens_per_second=SLOW if i == 1 else None)
                   for i, text in enumerate(ANSWERS)))


def _openai_tokens(base_url: str) -> Callable[[voicesync.ReplyStream, list[Any]], None] | None:
    try:
        import openai
    except ImportError:
        return None
    from voicesync.llm import stream_openai

    client = openai.OpenAI(base_url=base_url, api_key="stand-in", max_retries=0)

    def reply(stream: voicesync.ReplyStream, messages: list[Any]) -> None:
        completion = client.chat.completions.create(model="stand-in", messages=messages,
                                                    stream=True)
        stream_openai(stream, completion)  # a barge-in shuts the HTTP stream from the reader
    return reply


def _generator_tokens() -> Callable[[voicesync.ReplyStream, list[Any]], None]:
    answers = iter(ANSWERS)

    def tokens(stream: voicesync.ReplyStream, text: str, rate: float) -> Iterator[str]:
        for i, word in enumerate(text.split(" ")):
            if i and stream.aborted.wait(1.0 / rate):  # the "model" thinks; wakes on a barge-in
                return
            yield word if i == 0 else " " + word

    def reply(stream: voicesync.ReplyStream, messages: list[Any]) -> None:
        text = next(answers, "I have nothing more to say.")
        stream.pipe(tokens(stream, text, SLOW if text == ANSWERS[1] else 50.0))
    return reply


class DemoAgent(voicesync.Agent):
    """The agent: each caller turn streams a model reply; a barge-in aborts the stream."""

    id = "demo"
    greeting = GREETING

    def __init__(self, reply: Callable[[voicesync.ReplyStream, list[Any]], None]) -> None:
        super().__init__()
        self._reply = reply

    def on_turn(self, turn: voicesync.Turn, call: voicesync.Call,
                history: voicesync.History) -> None:
        with call.reply_stream(turn) as stream:
            self._reply(stream, history.to_openai(system="You are the voicesync demo line."))


def _row(label: str, start_ns: int, end_ns: int) -> str:
    return f"  {label:<52}{(end_ns - start_ns) / 1e6:7.1f} ms"


def _latencies(session: Session) -> list[str]:
    """Turn end -> first token on the wire; interruption -> stream end (and model hang-up)."""
    assert session.sim is not None
    frames = session.sim.frames
    turn_ends = {f.get("message_id"): f.ts_ns for f in frames
                 if f.direction == "out" and f.event == "turn.end"}
    streams: dict[str, Any] = {}  # bot message id -> the user message it answers
    first_token: dict[str, int] = {}
    stream_end: dict[str, int] = {}
    for f in frames:
        if f.direction != "in" or f.event != "bot.reply.stream":
            continue
        message_id, action = f.get("message_id"), f.get("action")
        if action == "start":
            streams[message_id] = f.get("in_reply_to")
        elif action == "chunk":
            first_token.setdefault(message_id, f.ts_ns)
        elif action == "end":
            stream_end.setdefault(message_id, f.ts_ns)
    lines = ["Latencies, from the simulator's timestamped record of every frame:"]
    for n, (message_id, user_id) in enumerate(streams.items(), 1):
        if user_id in turn_ends and message_id in first_token:
            lines.append(_row(f"turn {n}: turn end -> first token on the wire",
                              turn_ends[user_id], first_token[message_id]))
    model = session.sim.model
    hung_up = [r.disconnected_ns for r in (model.requests if model else [])
               if r.disconnected_ns is not None]
    for f in frames:
        if f.direction == "out" and f.event == "bot.interrupted":
            cut = f.get("message_id")
            if stream_end.get(cut, 0) > f.ts_ns:
                lines.append(_row("interruption -> reply stream ended on the wire", f.ts_ns,
                                  stream_end[cut]))
            if hung_up:
                lines.append(_row("interruption -> model's HTTP stream closed", f.ts_ns,
                                  hung_up[0]))
    if model is not None and model.requests:
        lines.append("(turn 1 includes opening the HTTP connection to the model)")
    return lines


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(prog="voicesync demo", description=__doc__)
    parser.add_argument("--words-per-second", type=float, default=3.5,
                        help="the bot's speaking pace (default 3.5, about natural speech)")
    args = parser.parse_args(list(argv))
    # Without the `sim` extra this raises MissingDependencyError; `python -m voicesync` prints it.
    with Session(local=True, model=True, words_per_second=args.words_per_second) as session:
        sim = session.sim
        assert sim is not None and sim.model is not None
        _script(sim.model)
        reply = _openai_tokens(sim.model.openai_base_url)
        source = ("the stand-in model through the openai client" if reply else
                  "a token generator (the llm extra adds the openai client)")
        print(f"voicesync demo: a simulated call on {sim.url}, bot speaking at "
              f"{args.words_per_second:g} words/s;\nreplies streamed token by token from "
              f"{source}; scripted, not a real LLM.\n")
        session.play(DemoAgent(reply or _generator_tokens()), CALLER)
        print("\n" + "\n".join(_latencies(session)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
