"""The Celery side of examples/celery_offload.py: the reply task its workers run.

Deploy it like any Celery module, on as many machines as you like:

    VOICESYNC_REDIS_URL=redis://your-redis:6379/0 \
        celery -A replies worker --pool threads --concurrency 8

(one such worker process per core; docs/scaling.md says why these flags).

`answer` does CPU-heavy work (it stands in for ranking documents, a local model, a big
prompt) and then streams its reply; on a barge-in `stream.aborted` wakes it at once.
"""

import os
import time

import redis
from celery import Celery

from voicesync.celery import reply_task
from voicesync.celery.local import URL_ENV

URL = os.environ.get(URL_ENV)  # unset: the example answers in process (the fallback)
app = Celery("replies", broker=URL or "redis://127.0.0.1:6379/0")
app.conf.update(worker_prefetch_multiplier=1, worker_hijack_root_logger=False,
                broker_connection_retry_on_startup=True,
                # no unacked index written per message before its task starts (docs/scaling.md)
                broker_transport_options={"ack_emulation": False})
_report = redis.Redis.from_url(URL, decode_responses=True) if URL else None
REPORT: list[str] = []  # what the replies did, when they run in process

PLANS = {
    "car": "Your car is covered for {price} dollars a month, with roadside help "
           "included. Shall I add the windscreen cover too? It costs two dollars more.",
    "": "Thanks for calling. Your quote is saved under your phone number. Goodbye!",
}


def report(line):
    if _report is not None:
        _report.rpush("example:report", line)
    else:
        REPORT.append(line)


def price_quote(text):
    """About 30 ms of pure-Python work: the kind that slows every call in one process."""
    total = 0
    for i in range(300_000):
        total = (total + i * len(text)) % 97
    return 20 + total


@reply_task(app)
def answer(stream, turn, call):
    """Runs in a Celery worker: `stream` talks to the caller through the socket process, and
    `call` (a RemoteCall) runs call commands there: say, hangup, forward, send_dtmf..."""
    who = f"worker pid {os.getpid()}"
    started = time.monotonic()
    price = price_quote(turn.text)
    plan = next(text for key, text in PLANS.items() if key in turn.text.lower())
    for word in plan.format(price=price).split():
        # The "slow step" of a real model: a barge-in ends the wait at once.
        if stream.aborted.wait(0.05) or not stream.write(word + " "):
            report(f"{who}: caller interrupted ({stream.abort_reason}), stopped")
            return
    report(f"{who}: answered in full in {time.monotonic() - started:.1f} s")
