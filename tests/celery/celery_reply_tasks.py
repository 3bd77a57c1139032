"""The reply tasks the celery tests' workers run (``celery -A celery_reply_tasks worker``).

Each task notes what it did in a Redis list ``notes:<message id>`` so a test can wait on the
worker's side of the story (started, its pid, aborted with which reason) with a deadline.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from celery import Celery
from celery.signals import task_prerun

from voicesync.celery import CallInfo, RemoteCall, RemoteReplyStream, reply_task
from voicesync.celery.local import URL_ENV
from voicesync.events import Turn

URL = os.environ.get(URL_ENV, "redis://127.0.0.1:6379/0")
app = Celery("celery_reply_tasks", broker=URL)
app.conf.update(worker_prefetch_multiplier=1, task_acks_late=True,
                broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)
_notes = redis.Redis.from_url(URL, decode_responses=True)
_gates = redis.Redis.from_url(URL, socket_timeout=None)  # BLPOP may outlast redis-py's 5 s


@task_prerun.connect
def _delivered(task_id: str | None = None, **_: Any) -> None:
    """Count deliveries of each task (its id is the reply's message id): a redelivery shows."""
    _notes.rpush(f"deliveries:{task_id}", os.getpid())


def note(stream: RemoteReplyStream, text: str) -> None:
    _notes.rpush(f"notes:{stream.message_id}", text)


def _abort_note(stream: RemoteReplyStream) -> None:
    note(stream, f"aborted:{stream.abort_reason}:{time.time():.6f}")


@reply_task(app)
def words(stream: RemoteReplyStream, turn: Turn, call: CallInfo, text: str,
          gap: float = 0.0) -> None:
    """Say `text` word by word, `gap` seconds apart (an abort cuts the gap short)."""
    note(stream, f"started:{os.getpid()}:{call.id}:{turn.text}")
    stream.on_abort(_abort_note)
    for word in text.split():
        if gap and stream.aborted.wait(gap):
            return
        if not stream.write(word + " "):
            return


@reply_task(app)
def hang(stream: RemoteReplyStream, turn: Turn, call: CallInfo, first: str = "") -> None:
    """Say `first`, then wait (up to 30 s) for an abort: a worker to kill or freeze."""
    stream.on_abort(_abort_note)
    if first:
        stream.write(first)
    note(stream, f"started:{os.getpid()}")
    stream.aborted.wait(30)


@reply_task(app)
def held(stream: RemoteReplyStream, turn: Turn, call: CallInfo, gate: str) -> None:
    """Occupy the worker until the test pushes to the list `gate` (at most 30 s)."""
    note(stream, "started")
    _gates.blpop([gate], timeout=30)
    stream.write("released")


@reply_task(app)
def fails(stream: RemoteReplyStream, turn: Turn, call: CallInfo) -> None:
    stream.write("Let me")
    raise RuntimeError("the task failed")


@reply_task(app)
def llm(stream: RemoteReplyStream, turn: Turn, call: CallInfo, base_url: str) -> Any:
    """Stream the stand-in model's answer with the unchanged voicesync.llm helper."""
    import openai

    from voicesync.llm import stream_openai

    client = openai.OpenAI(base_url=base_url, api_key="sk-test-dummy", max_retries=0)
    note(stream, "started")
    stream.on_abort(_abort_note)
    try:
        stream_openai(stream, client.chat.completions.create(
            model="stand-in", stream=True,
            messages=[{"role": "user", "content": turn.text}]))
    finally:
        client.close()
    note(stream, f"llm-returned:{time.time():.6f}")


@reply_task(app)
def transfers(stream: RemoteReplyStream, turn: Turn, call: RemoteCall, to: str) -> None:
    """Speak, then run call commands from the worker: DTMF, a standalone say, a transfer."""
    stream.write("Putting you through. ")
    note(stream, f"dtmf:{call.send_dtmf('12#')}")
    call.say("One moment.")
    call.forward(to, message="transferring")


@reply_task(app)
def hangs_up_late(stream: RemoteReplyStream, turn: Turn, call: RemoteCall) -> None:
    """Wait (up to 30 s) for an abort, then try to hang up: a stale reply's command."""
    stream.write("Goodbye")
    note(stream, "started")
    stream.aborted.wait(30)
    note(stream, f"hangup:{call.hangup()}")
