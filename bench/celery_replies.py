"""The reply tasks of bench/celery_offload.py's workers (``celery -A celery_replies worker``)."""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from celery import Celery

from voicesync.celery import reply_task
from voicesync.celery.local import URL_ENV

URL = os.environ.get(URL_ENV, "redis://127.0.0.1:6379/0")
app = Celery("celery_replies", broker=URL)
app.conf.update(worker_prefetch_multiplier=1, worker_hijack_root_logger=False,
                broker_connection_retry_on_startup=True,
                # What docs/scaling.md advises for an app of reply tasks: no unacked index
                # written per message before its task starts (-0.3 ms at the median).
                broker_transport_options={"ack_emulation": False})
_notes = redis.Redis.from_url(URL, decode_responses=True)


def spin(iterations: int) -> int:
    """Pure-Python CPU work (holds the GIL): the ~20 ms a heavy turn costs."""
    total = 0
    for i in range(iterations):
        total = (total + i * i) % 1_000_003
    return total


def tokens(count: int) -> list[str]:
    return [f"word{i} " for i in range(count - 1)] + ["done."]


def answer(stream: Any, iterations: int, count: int) -> None:
    """What a heavy turn does, the same in process and in a worker."""
    spin(iterations)
    for token in tokens(count):
        if not stream.write(token):
            return


@reply_task(app)
def heavy(stream: Any, turn: Any, call: Any, iterations: int, count: int) -> None:
    answer(stream, iterations, count)


@reply_task(app)
def quick(stream: Any, turn: Any, call: Any) -> None:
    for token in tokens(5):
        stream.write(token)


@reply_task(app)
def model(stream: Any, turn: Any, call: Any, base_url: str) -> None:
    """stream_openai against the stand-in model; notes when the abort arrived and when the
    provider's stream was closed (stream_openai returned)."""
    import openai

    from voicesync.llm import stream_openai

    client = openai.OpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)
    stream.on_abort(lambda s: _notes.rpush(f"bench:{s.message_id}", f"aborted {time.time()}"))
    try:
        stream_openai(stream, client.chat.completions.create(
            model="stand-in", stream=True, messages=[{"role": "user", "content": "go"}]))
    finally:
        _notes.rpush(f"bench:{stream.message_id}", f"closed {time.time()}")
        client.close()

