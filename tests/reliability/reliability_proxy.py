"""An in-process TCP proxy that injects faults between the SDK and a server (loopback only).

In the style of aiopg's ``TcpProxy``: plain threads and blocking sockets, no event loop.
Every accepted connection gets an upstream connection and two links (SDK → server and
server → SDK); each link has a reader thread and a writer thread with a queue between
them, so added latency keeps byte order.

Faults:
  cut()            FIN both ways on every live connection (an orderly TCP close)
  reset()          RST to the SDK (SO_LINGER 0) and to the server
  blackhole(True)  keep TCP open but forward nothing (bytes are read and discarded)
  set_delay(l, j)  every chunk waits l ± j seconds, order kept
  stop_listening() / listen()  the port refuses connections, then accepts again;
  restart(pause)   stop_listening + cut now, listen() again on the same port after `pause`
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import random
import socket
import struct
import threading
import time
from collections.abc import Callable
from types import TracebackType

from typing_extensions import Self

Address = tuple[str, int]
_EOF = b""
_names = itertools.count(1)


class _Link:
    """One direction of one connection: read `src`, deliver to `dst` after the delay."""

    def __init__(self, proxy: FaultProxy, pair: _Pair, src: socket.socket, dst: socket.socket,
                 name: str) -> None:
        self.proxy, self.pair, self.src, self.dst = proxy, pair, src, dst
        self.queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.cond = threading.Condition()
        self.last_due = 0.0
        self.done = False
        self.deaf = False  # stop reading `src` (its sender's buffers fill up)
        self.reader = threading.Thread(target=self._read, name=f"{name}-r", daemon=True)
        self.writer = threading.Thread(target=self._write, name=f"{name}-w", daemon=True)

    def start(self) -> None:
        self.reader.start()
        self.writer.start()

    def stop(self) -> None:
        with self.cond:
            self.done = True
            self.cond.notify_all()

    def _read(self) -> None:
        while True:
            with self.cond:
                while self.deaf and not self.done:
                    self.cond.wait()
            try:
                data = self.src.recv(65536)
            except OSError:
                data = _EOF
            if self.pair.killed:
                return
            if data and self.proxy.blackholed:
                self.pair.swallowed += len(data)
                self.proxy._count(len(data), swallowed=True)
                continue  # swallowed: the peer sees an open, silent connection
            self.proxy._count(len(data))
            with self.cond:
                due = time.monotonic() + self.proxy._latency()
                self.last_due = due = max(due, self.last_due)
                self.queue.append((due, data))
                self.cond.notify_all()
            if not data:
                return

    def _write(self) -> None:
        while True:
            with self.cond:
                while not self.done and not self.queue:
                    self.cond.wait()
                if self.done:
                    return
                due, data = self.queue[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self.cond.wait(wait)
                    continue
                self.queue.popleft()
            if not data:
                with contextlib.suppress(OSError):
                    self.dst.shutdown(socket.SHUT_WR)
                self.pair.half_closed()
                return
            if self.proxy.blackholed:
                continue
            try:
                self.dst.sendall(data)
            except OSError:
                self.pair.kill(rst=False)
                return


class _Pair:
    """One proxied connection: the SDK-side socket and the server-side socket."""

    def __init__(self, proxy: FaultProxy, down: socket.socket, up: socket.socket) -> None:
        self.proxy = proxy
        self.down, self.up = down, up
        self.killed = False
        self.swallowed = 0
        self._lock = threading.Lock()
        self._halves = 0
        n = next(_names)
        self.links = (_Link(proxy, self, down, up, f"reliability-proxy-{n}-up"),
                      _Link(proxy, self, up, down, f"reliability-proxy-{n}-down"))

    def start(self) -> None:
        for link in self.links:
            link.start()

    def half_closed(self) -> None:
        with self._lock:
            self._halves += 1
            both = self._halves == 2
        if both:
            self.kill(rst=False)

    def kill(self, *, rst: bool) -> None:
        with self._lock:
            if self.killed:
                return
            self.killed = True
        for sock in (self.down, self.up):
            if rst:
                # SO_LINGER on, 0 s: close() aborts the connection with an RST.
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RD)  # wakes our reader, sends nothing
            else:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # FIN, and wakes our reader
        for link in self.links:
            link.stop()
        for sock in (self.down, self.up):
            sock.close()
        self.proxy._forget(self)

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for link in self.links:
            for thread in (link.reader, link.writer):
                if thread is not threading.current_thread():
                    thread.join(max(0.0, deadline - time.monotonic()))


class FaultProxy:
    """Listens on 127.0.0.1 and forwards each connection to `target` (see module doc).

    `target` is an address or a callable returning one (read at every accept), so a
    server that comes back on another port can be followed.
    """

    def __init__(self, target: Address | Callable[[], Address], *, port: int = 0) -> None:
        self._target = target
        self._port = port
        self._lock = threading.Condition()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._pairs: set[_Pair] = set()
        self._all_pairs: list[_Pair] = []
        self._delay = (0.0, 0.0)
        self._rng = random.Random(7)
        self.blackholed = False
        self.accepted = 0
        self.bytes_forwarded = 0
        self.bytes_swallowed = 0  # read and dropped while black-holed
        self._restarter: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Self:
        self.listen()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._port}"

    def listen(self) -> None:
        """Accept connections on the proxy's port (the same one every time)."""
        with self._lock:
            if self._listener is not None:
                return
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self._port))
            sock.listen(64)
            self._port = sock.getsockname()[1]
            self._listener = sock
            self._acceptor = threading.Thread(
                target=self._accept, args=(sock,), name="reliability-proxy-accept", daemon=True)
            self._acceptor.start()

    def stop_listening(self) -> None:
        """Close the listening socket: new connections are refused until listen()."""
        with self._lock:
            sock, self._listener = self._listener, None
            acceptor, self._acceptor = self._acceptor, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux
            sock.close()
        if acceptor is not None:
            acceptor.join(2.0)

    def restart(self, pause: float, *, rst: bool = False) -> None:
        """A server restart: refuse and drop everything now, listen again after `pause` s."""
        self.stop_listening()
        self.reset() if rst else self.cut()
        stop = threading.Event()

        def relisten() -> None:
            stop.wait(pause)
            self.listen()

        self._restarter = threading.Thread(target=relisten, name="reliability-proxy-restart",
                                           daemon=True)
        self._restarter.start()

    def close(self) -> None:
        if self._restarter is not None:
            self._restarter.join(10.0)
        self.stop_listening()
        self.cut()
        for pair in list(self._all_pairs):
            pair.join(2.0)

    # ------------------------------------------------------------------ faults

    def cut(self) -> None:
        """Close every live connection in order (FIN to both ends)."""
        for pair in self._live():
            pair.kill(rst=False)

    def reset(self) -> None:
        """Abort every live connection (RST to both ends)."""
        for pair in self._live():
            pair.kill(rst=True)

    def blackhole(self, on: bool = True) -> None:
        """Stop (or resume) forwarding; connections stay open and bytes are discarded."""
        self.blackholed = on

    def stop_reading(self) -> None:
        """Stop reading what the SDK sends on every live connection (TCP stays open and
        the server's frames still reach the SDK): the SDK's socket buffers fill up."""
        for pair in self._live():
            link = pair.links[0]
            with link.cond:
                link.deaf = True
            with contextlib.suppress(OSError):  # a small window fills up sooner
                link.src.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)

    def set_delay(self, latency: float, jitter: float = 0.0) -> None:
        """Delay every chunk by latency ± jitter seconds (uniform); order is kept."""
        self._delay = (latency, jitter)

    # ------------------------------------------------------------------ observation

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def wait_swallowed(self, connection: int, count: int, timeout: float) -> bool:
        """Block until the black hole swallowed `count` bytes of the `connection`-th
        proxied connection (1-based)."""
        def enough() -> bool:
            pairs = self._all_pairs
            return len(pairs) >= connection and pairs[connection - 1].swallowed >= count

        with self._lock:
            return self._lock.wait_for(enough, timeout)

    def wait_accepted(self, count: int, timeout: float) -> bool:
        """Block until `count` connections were accepted in total."""
        with self._lock:
            return self._lock.wait_for(lambda: self.accepted >= count, timeout)

    # ------------------------------------------------------------------ internals

    def _live(self) -> list[_Pair]:
        with self._lock:
            return list(self._pairs)

    def _latency(self) -> float:
        latency, jitter = self._delay
        if latency <= 0 and jitter <= 0:
            return 0.0
        with self._lock:
            return max(0.0, latency + self._rng.uniform(-jitter, jitter))

    def _count(self, n: int, *, swallowed: bool = False) -> None:
        with self._lock:
            if swallowed:
                self.bytes_swallowed += n
            else:
                self.bytes_forwarded += n
            self._lock.notify_all()

    def _forget(self, pair: _Pair) -> None:
        with self._lock:
            self._pairs.discard(pair)
            self._lock.notify_all()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                down, _ = listener.accept()
            except OSError:
                return
            target = self._target() if callable(self._target) else self._target
            try:
                up = socket.create_connection(target, timeout=2.0)
                up.settimeout(None)
            except OSError:
                down.close()  # the server is down: the SDK sees the connection drop
                with self._lock:
                    self.accepted += 1
                    self._lock.notify_all()
                continue
            for sock in (down, up):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _Pair(self, down, up)
            with self._lock:
                self._pairs.add(pair)
                self._all_pairs.append(pair)
                self.accepted += 1
                self._lock.notify_all()
            pair.start()
