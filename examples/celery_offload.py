"""Hand each turn to Celery workers over Redis: heavy turns leave the socket process, and a
barge-in still stops the worker mid-reply. The worker code is examples/celery_worker/replies.py.

Run: python examples/celery_offload.py   (needs the celery extra and redis-server)

Without PINECALL_API_KEY it starts a throwaway redis-server and two Celery workers, plays one
call with a barge-in on the local simulator, stops them and exits. With the key it serves
real calls until Ctrl-C, with Redis at REDIS_URL and your own workers running replies.py.
Without redis-server installed it says so and answers in process (``fallback=True``).
"""

import contextlib
import os
import sys
import time
from pathlib import Path

import voicesync
import voicesync.local
from voicesync.celery import Offloader
from voicesync.celery.local import URL_ENV, RedisServer, Workers, redis_server_path
from voicesync.local import BargeIn

WORKER_DIR = Path(__file__).resolve().parent / "celery_worker"
ROOT = WORKER_DIR.parents[1]


def start_redis_and_workers(stack):
    """The Redis URL to use: REDIS_URL, or a local redis-server with two workers on it."""
    if os.environ.get("REDIS_URL") or voicesync.local.platform_key():
        url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        os.environ[URL_ENV] = url
        return url
    if redis_server_path() is None:
        print("redis-server is not installed (apt-get install redis-server): "
              "answering in this process instead.", file=sys.stderr)
        return "redis://127.0.0.1:1/0"  # unreachable on purpose: the fallback answers
    url = stack.enter_context(RedisServer()).url
    os.environ[URL_ENV] = url  # the workers and the replies module read it
    path = os.pathsep.join([str(WORKER_DIR), str(ROOT)])
    stack.enter_context(Workers("replies", url, count=2, env={"PYTHONPATH": path}))
    return url


def main():
    with contextlib.ExitStack() as stack:
        url = start_redis_and_workers(stack)
        sys.path.insert(0, str(WORKER_DIR))
        import replies  # after the URL is known: its Celery app reads it

        offloader = stack.enter_context(Offloader(
            url, fallback=True,
            on_failure=lambda offload, reason: print(f"[reply {offload.message_id}: {reason}]")))

        class QuoteDesk(voicesync.Agent):
            id = "quote-desk"
            greeting = "Quote desk, what would you like to insure?"

            # On a voicesync handler thread: returns at once, a worker does the work.
            def on_turn(self, turn, call, history):
                offloader.offload(turn, call, replies.answer)

        voicesync.local.run(QuoteDesk(), model=False, caller=[
            "A quote for my car, please.",
            BargeIn("No thanks, that's all.", after_words=4),
        ])
        print("\n".join(worker_report(replies, expected=2)))


def worker_report(replies, *, expected, timeout=5.0):
    """What the workers did (they write it to Redis as they finish), or the in-process list."""
    if replies._report is None:
        return replies.REPORT
    deadline = time.monotonic() + timeout
    while replies._report.llen("example:report") < expected and time.monotonic() < deadline:
        replies._report.blpop(["example:never"], timeout=0.05)  # a short, bounded wait
    return replies._report.lrange("example:report", 0, -1)


if __name__ == "__main__":
    main()
