"""Run Redis and Celery workers on this machine: for the example, the tests and the benchmark.

::

    with RedisServer() as redis_server, Workers("myapp.replies", redis_server.url, count=2):
        ...  # offload turns; the workers answer them

`RedisServer` starts ``redis-server`` (the Debian package ``redis-server``, or any on PATH) on
a free loopback port without persistence. `Workers` starts ``count`` separate ``celery worker``
processes (prefork pool, one child each) for a module whose Celery app reads its broker URL
from the ``VOICESYNC_REDIS_URL`` environment variable, and waits until they answer a ping.
Both stop what they started on exit: SIGTERM to the process, SIGKILL to its group after
`timeout`.
Nothing here is for production; deploy workers as docs/scaling.md shows.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from types import TracebackType

import redis
from typing_extensions import Self

from voicesync.errors import ConfigurationError

__all__ = ["URL_ENV", "RedisServer", "Workers", "redis_server_path"]

URL_ENV = "VOICESYNC_REDIS_URL"


def redis_server_path() -> str | None:
    """Where ``redis-server`` is, or None if it is not installed."""
    return shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/local/bin/redis-server")
         if os.access(p, os.X_OK)), None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is None:
        process.terminate()  # the leader only: a worker then stops its own pool children
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)
    # A prefork child orphaned by a killed parent is in the same group: end it too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


class RedisServer:
    """A throwaway ``redis-server`` on 127.0.0.1 (no persistence), ready when `start` returns."""

    def __init__(self, *, port: int | None = None, timeout: float = 10.0) -> None:
        self.port = port or _free_port()
        self.timeout = timeout
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        path = redis_server_path()
        if path is None:
            raise ConfigurationError(
                "redis-server is not installed: apt-get install redis-server (or brew "
                "install redis), or point the Offloader at a Redis you run")
        self._process = subprocess.Popen(
            [path, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--protected-mode", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, start_new_session=True)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + self.timeout
        try:
            while True:
                try:
                    client.ping()
                    return self
                except redis.ConnectionError:
                    if self._process.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        raise ConfigurationError(
                            f"redis-server did not come up on port {self.port}") from None
                    time.sleep(0.02)  # polling a port that is not open yet
        finally:
            client.close()

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def stop(self, timeout: float = 5.0) -> None:
        if self._process is not None:
            _stop(self._process, timeout)
            self._process = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class Workers:
    """``count`` Celery worker processes for `module` on `redis_url`, ready when `start` returns.

    Args:
        module: the ``-A`` argument: a module whose Celery app takes its broker URL from
            ``VOICESYNC_REDIS_URL`` (set here for the workers).
        pool / concurrency: the worker pool and its size per worker process.
        env: extra environment for the workers (PYTHONPATH is inherited).
    """

    def __init__(self, module: str, redis_url: str, *, count: int = 2, pool: str = "prefork",
                 concurrency: int = 1, timeout: float = 30.0,
                 env: dict[str, str] | None = None, extra_args: Sequence[str] = ()) -> None:
        self.module = module
        self.redis_url = redis_url
        self.count = count
        self.pool = pool
        self.concurrency = concurrency
        self.timeout = timeout
        self.env = dict(env or {})
        self.extra_args = list(extra_args)
        self.names = [f"vs{i}-{os.getpid()}@127.0.0.1" for i in range(count)]
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> Self:
        env = {**os.environ, **self.env, URL_ENV: self.redis_url}
        for name in self.names:
            self.processes.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", self.module, "worker", "-n", name,
                 "--pool", self.pool, "--concurrency", str(self.concurrency),
                 "--without-gossip", "--without-mingle", "--loglevel", "WARNING",
                 *self.extra_args],
                env=env, stdout=subprocess.DEVNULL, start_new_session=True))
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        from celery import Celery  # the celery extra; imported only when workers are used

        app = Celery(broker=self.redis_url)
        deadline = time.monotonic() + self.timeout
        waiting = set(self.names)
        try:
            while waiting:
                for reply in app.control.ping(destination=sorted(waiting), timeout=0.5):
                    waiting -= set(reply)
                dead = [p.args for p in self.processes if p.poll() is not None]
                if dead or (waiting and time.monotonic() > deadline):
                    raise ConfigurationError(
                        f"Celery workers {sorted(waiting)} did not start within "
                        f"{self.timeout:g} s" + (f" (exited: {dead})" if dead else ""))
        finally:
            app.close()

    def stop(self, timeout: float = 10.0) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()  # all at once; a group-wide SIGTERM would reach the
                # pool children too, and their parent logs each as an ERROR
        for process in self.processes:
            _stop(process, timeout)
        self.processes = []

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
