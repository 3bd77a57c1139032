"""The worker side of offloading: `reply_task` turns a function into a Celery reply task.

The task body runs at most once per reply, whatever the broker does: before calling the
function it claims the reply's message id in Redis (SET NX), so a task redelivered after a
worker crash finds the claim, tells the socket process the reply is lost, and stops; and it
reads the reply's control stream, so a turn that was superseded (barge-in, continuation,
call end) while it sat in the queue never starts.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any

import redis

from voicesync.celery import _wire
from voicesync.celery._remote import RemoteReplyStream

logger = logging.getLogger(__name__)

ReplyFunction = Callable[..., Any]
"""``fn(stream, turn, call, *args, **kwargs)``: stream a reply; what it returns is ignored."""

# Outcomes a reply task returns (its Celery result, if the app keeps results).
ANSWERED, ABORTED, SUPERSEDED, DUPLICATE = "answered", "aborted", "superseded", "duplicate"

_clients: dict[tuple[str, int], redis.Redis] = {}
_clients_lock = threading.Lock()


def redis_client(url: str, *, connect_timeout: float = 2.0) -> redis.Redis:
    """One client (one connection pool) per URL per process: a prefork child makes its own."""
    key = (url, os.getpid())
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = redis.Redis.from_url(url, decode_responses=True,
                                          socket_connect_timeout=connect_timeout,
                                          socket_timeout=5.0, health_check_interval=30)
            _clients[key] = client
        return client


def reply_task(app: Any, *, redis_url: str | None = None, name: str | None = None,
               **options: Any) -> Callable[[ReplyFunction], Any]:
    """Register ``fn(stream, turn, call, *args, **kwargs)`` as a Celery task that answers
    one offloaded turn. Import the module in the socket process and the workers alike.

    ``stream`` is a `RemoteReplyStream` (write / aborted / on_abort / end / ``with``);
    ``turn`` is the `voicesync.Turn`; ``call`` a `RemoteCall`: the `CallInfo` snapshot
    plus the call's commands (``say``, ``hangup``, ``forward``, ``send_dtmf`` ...), which the
    socket process runs on the live call. The stream is ended
    when the function returns and aborted (``error``) if it raises.

    Args:
        app: the Celery app.
        redis_url: the Redis that carries the reply's tokens, as the worker reaches it
            (default: the app's broker URL). It must be the same Redis the socket process's
            `Offloader` uses.
        name: the task name (default: Celery's, from the module and function name).
        options: more ``app.task`` options. voicesync sets ``acks_late`` and
            ``reject_on_worker_lost`` so a task whose worker dies is redelivered; the
            claim makes that redelivery harmless.
    """
    def decorate(fn: ReplyFunction) -> Any:
        task_options: dict[str, Any] = {"acks_late": True, "reject_on_worker_lost": True,
                                        **options}
        if name is not None:
            task_options["name"] = name

        @functools.wraps(fn)
        def run(payload: Mapping[str, Any], *args: Any, **kwargs: Any) -> str:
            url = redis_url or str(app.conf.broker_url)
            return run_reply(fn, redis_client(url), _wire.Payload.from_json(payload),
                             args, kwargs)

        task = app.task(**task_options)(run)
        task.voicesync_function = fn  # what an Offloader with fallback=True runs in-process
        return task

    return decorate


def run_reply(fn: ReplyFunction, client: redis.Redis, payload: _wire.Payload,
              args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    """Claim the reply, check it is still wanted, then run `fn` with a remote stream."""
    message_id = payload.message_id
    holder = f"{socket.gethostname()}:{os.getpid()}"
    stream = RemoteReplyStream(client, payload)
    stream.listen()
    # One round trip: claim, read the control stream, wake the abort listener, announce the
    # start. START is harmless when the reply turns out to be a duplicate or superseded:
    # the relay has dropped it.
    with client.pipeline(transaction=False) as pipe:
        pipe.set(_wire.claim_key(payload.namespace, message_id), holder,
                 nx=True, ex=_wire.CLAIM_TTL)
        pipe.xrange(_wire.ctl_key(payload.namespace, message_id), count=1)
        stream.wake_ops(pipe)
        pipe.xadd(payload.up, _wire.frame(message_id, _wire.START),  # type: ignore[arg-type]
                  maxlen=_wire.UP_MAXLEN, approximate=True)
        claimed, control = pipe.execute()[:2]
    if not claimed or control:
        stream.forget()
    if not claimed:
        # Redelivered: the worker that claimed it died. Say so now rather than let the
        # socket process wait out its deadline; the reply is never spoken twice.
        logger.info("reply %s was already claimed (a redelivered task); not answering again",
                    message_id)
        client.xadd(payload.up, _wire.frame(message_id, _wire.ABORT, _wire.LOST),  # type: ignore[arg-type]
                    maxlen=_wire.UP_MAXLEN, approximate=True)
        return DUPLICATE
    for _, (_, _, reason) in _wire.entries(control):
        logger.info("reply %s was superseded while queued (%s); not starting it",
                    message_id, reason)
        return SUPERSEDED
    with stream:
        fn(stream, payload.turn, stream.call, *args, **kwargs)
    return ABORTED if stream.aborted.is_set() else ANSWERED
