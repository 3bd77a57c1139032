"""Hand each turn to your app's own thread pool: the handler returns at once and a worker
thread writes the reply. A ReplyStream may be written, ended or aborted from any thread.

Run: python examples/threaded_worker.py   (PINECALL_API_KEY: real calls, else a local one)
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import voicesync
import voicesync.local
from voicesync.local import BargeIn

pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="app-worker")
report: list[str] = []  # what the workers did, printed at the end


ANSWERS = {  # stands in for slow work (a database, an API) producing a reply in pieces
    "where": ["Let me check. ", "Your order 1042 left our warehouse this morning."],
    "when": ["Let me check. ", "The courier says Thursday, before noon, ",
             "and the spare cable you asked for comes in the same parcel."],
    "": ["You're welcome. Goodbye!"],
}


def slow_answer(question):
    return next(parts for key, parts in ANSWERS.items() if key in question.lower())


def answer(stream, question):
    """Runs on an app-worker thread, not on voicesync's."""
    with stream:  # ends the reply however this function exits
        for piece in slow_answer(question):
            # aborted.wait() is the worker's "slow step": it returns True at once on a barge-in.
            if stream.aborted.wait(0.6) or not stream.write(piece):
                report.append(f"{threading.current_thread().name}: caller interrupted, stopped")
                return
    report.append(f"{threading.current_thread().name}: answered in full")


class OrderDesk(voicesync.Agent):
    id = "order-desk"
    greeting = "Order desk, how can I help?"

    def on_turn(self, turn, call, history):
        # Runs on a voicesync handler thread: open the stream here, fill it elsewhere.
        pool.submit(answer, call.reply_stream(turn), turn.text)


if __name__ == "__main__":
    try:
        voicesync.local.run(OrderDesk(), caller=[
            "Where is my order?",
            "And when will it arrive?",
            BargeIn("Thursday works, thank you.", after_words=3),
        ])
    finally:
        pool.shutdown(wait=True)
    print("\n".join(report))
