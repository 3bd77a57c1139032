"""Offload turns to Celery workers (the ``celery`` extra): heavy turns leave the socket process,
barge-in still reaches the worker in milliseconds.

In the module both processes import (the socket process and the workers)::

    from celery import Celery
    from voicesync.celery import reply_task

    app = Celery("replies", broker="redis://localhost:6379/0")

    @reply_task(app)
    def answer(stream, turn, call):          # runs in a worker, on any machine
        stream_openai(stream, openai.OpenAI(), model="gpt-4o-mini", messages=[...])

In the socket process::

    offloader = voicesync.celery.Offloader("redis://localhost:6379/0")
    agent.on("turn.end", offloader.handler(answer))   # or offloader.offload(turn, call, answer)

Tokens come back over a Redis Stream and are written to the call's `ReplyStream` in order by
one relay thread; aborts (barge-in, continuation, call end) go to the worker's
`RemoteReplyStream`, whose ``aborted`` / ``on_abort`` behave like the local stream's, so
`voicesync.llm.stream_openai` closes the provider's HTTP stream there. Failure semantics
(worker lost, redelivery, queued turns superseded, Redis down) are in ``docs/scaling.md``.
"""

from __future__ import annotations

try:
    import redis as _redis  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("voicesync.celery needs the celery extra: "
                      "pip install 'voicesync[celery]'") from exc

from voicesync.celery._commands import RemoteCall as RemoteCall
from voicesync.celery._handle import Offload as Offload
from voicesync.celery._listener import stop_abort_listeners as stop_abort_listeners
from voicesync.celery._offloader import (
    CLOSED as CLOSED,
    LOST as LOST,
    UNAVAILABLE as UNAVAILABLE,
    UNSTARTED as UNSTARTED,
    Offloader as Offloader,
)
from voicesync.celery._remote import RemoteReplyStream as RemoteReplyStream
from voicesync.celery._task import (
    ABORTED as ABORTED,
    ANSWERED as ANSWERED,
    DUPLICATE as DUPLICATE,
    SUPERSEDED as SUPERSEDED,
    reply_task as reply_task,
)
from voicesync.celery._wire import (
    CallInfo as CallInfo,
    OffloadError as OffloadError,
    OffloadUnavailableError as OffloadUnavailableError,
)

__all__ = [
    "ABORTED",
    "ANSWERED",
    "CLOSED",
    "DUPLICATE",
    "LOST",
    "SUPERSEDED",
    "UNAVAILABLE",
    "UNSTARTED",
    "CallInfo",
    "Offload",
    "OffloadError",
    "OffloadUnavailableError",
    "Offloader",
    "RemoteCall",
    "RemoteReplyStream",
    "reply_task",
    "stop_abort_listeners",
]
