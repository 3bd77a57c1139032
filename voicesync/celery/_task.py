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
from voicesync.celery._listener import WAKE_MAXLEN
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
            return run_reply(fn, redis_client(_url(app, redis_url)),
                             _wire.Payload.from_json(payload), args, kwargs)

        _warm_at_worker_start(app, redis_url)

        task = app.task(**task_options)(run)
        task.voicesync_function = fn  # what an Offloader with fallback=True runs in-process
        return task

    return decorate


# The claim, as one command (one round trip, and one command's write and read rather than
# a pipeline's five): KEYS claim, control stream, listener's wake stream, up stream.
# A reply claimed before (a task redelivered after its worker died) tells the socket
# process it is lost now, rather than let it wait out its deadline; one whose control
# stream holds an abort was superseded while queued and never starts. Otherwise the abort
# listener is woken (its read then includes this reply) and the start announced.
_CLAIM = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '*', 'm', ARGV[4], 'k', ARGV[5],
             't', ARGV[6])
  return {'duplicate', ''}
end
local control = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
if #control > 0 then
  local fields = control[1][2]
  for i = 1, #fields - 1, 2 do
    if fields[i] == 't' then return {'superseded', fields[i + 1]} end
  end
  return {'superseded', ''}
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*', 'k', 'wake')
redis.call('EXPIRE', KEYS[3], ARGV[8])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '*', 'm', ARGV[4], 'k', ARGV[9], 't', '')
return {'claimed', ''}
"""


def claim(stream: RemoteReplyStream, payload: _wire.Payload) -> tuple[str, str]:
    """Run the claim for `stream` (listening already): ("claimed" | "duplicate" |
    "superseded", the abort reason if superseded)."""
    message_id, namespace = payload.message_id, payload.namespace
    outcome, reason = stream.execute(
        "EVAL", _CLAIM, 4, _wire.claim_key(namespace, message_id),
        _wire.ctl_key(namespace, message_id), stream.wake_key, payload.up,
        f"{socket.gethostname()}:{os.getpid()}", _wire.CLAIM_TTL, _wire.UP_MAXLEN,
        message_id, _wire.ABORT, _wire.LOST, WAKE_MAXLEN, _wire.CTL_TTL, _wire.START)
    return str(outcome), str(reason)


def _url(app: Any, redis_url: str | None) -> str:
    return redis_url or str(app.conf.broker_url)


_to_warm: dict[tuple[int, str | None], tuple[Any, str | None]] = {}


def _warm_at_worker_start(app: Any, redis_url: str | None) -> None:
    """Have each worker process open its Redis connection when it starts: the first reply
    of a process would otherwise pay for the connect and handshake (3 to 4 ms measured)."""
    with _clients_lock:
        if not _to_warm:
            from celery import signals

            # worker_ready: the process that runs tasks with the solo and threads pools;
            # worker_process_init: each prefork child.
            signals.worker_ready.connect(_warm_up, weak=False)
            signals.worker_process_init.connect(_warm_up, weak=False)
        _to_warm[id(app), redis_url] = (app, redis_url)


def _warm_up(**_: Any) -> None:
    for app, redis_url in list(_to_warm.values()):
        url = _url(app, redis_url)
        try:
            redis_client(url).ping()
        except redis.RedisError as exc:  # the first reply will say so, or succeed
            logger.warning("reply tasks: cannot reach Redis at worker start (%s)", exc)


def run_reply(fn: ReplyFunction, client: redis.Redis, payload: _wire.Payload,
              args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    """Claim the reply, check it is still wanted, then run `fn` with a remote stream."""
    message_id = payload.message_id
    stream = RemoteReplyStream(client, payload)
    stream.listen()
    try:
        outcome, reason = claim(stream, payload)
    except BaseException:  # Redis refused or was lost: Celery reports the task's error
        stream.forget()
        raise
    if outcome != "claimed":
        stream.forget()
    if outcome == "duplicate":
        logger.info("reply %s was already claimed (a redelivered task); not answering again",
                    message_id)
        return DUPLICATE
    if outcome == "superseded":
        logger.info("reply %s was superseded while queued (%s); not starting it",
                    message_id, reason)
        return SUPERSEDED
    with stream:
        fn(stream, payload.turn, stream.call, *args, **kwargs)
    return ABORTED if stream.aborted.is_set() else ANSWERED
