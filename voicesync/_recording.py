"""Recording a client's frames to JSONL, the format `voicesync.scenarios.replay` reads.

One JSON object a line: ``{"ts_ns", "direction", "data"}``. Directions are the
platform's, as in the simulator's frame record: "out" is platform -> agent (what the
client received), "in" is agent -> platform (what it sent). `ts_ns` is a monotonic
clock's nanoseconds: differences mean something, the origin does not.

The reader and senders only append the raw text to a byte-bounded buffer; the
`voicesync-recorder` thread redacts, parses and writes it, so a slow disk never holds
up a frame (a full buffer drops frames from the recording and counts them).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voicesync._log import redact
from voicesync.errors import ConfigurationError

logger = logging.getLogger(__name__)


def jsonl_line(ts_ns: int, direction: str, data: Any) -> str:
    """One recorded frame as a line of the recording format."""
    return json.dumps({"ts_ns": ts_ns, "direction": direction, "data": data},
                      separators=(",", ":")) + "\n"


class Recorder:
    """Writes the frames of one client to `path` until `stop()`; see `Client.record`.

    `dropped` counts frames left out because `max_bytes` of text were waiting for the
    disk. Every method may be called from any thread.
    """

    def __init__(self, path: str | Path, secret: str | None, *,
                 max_bytes: int = 16 << 20) -> None:
        self.path = Path(path)
        self.dropped = 0
        self._secret = secret
        self._max_bytes = max_bytes
        self._file = self.path.open("w", encoding="utf-8")  # fails here, in the caller
        self._cond = threading.Condition()
        self._pending: deque[tuple[int, str, str]] = deque()
        self._bytes = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="voicesync-recorder",
                                        daemon=True)
        self._thread.start()

    def received(self, text: str) -> None:
        self._put("out", text)

    def sent(self, text: str) -> None:
        self._put("in", text)

    def _put(self, direction: str, text: str) -> None:
        stamp = time.monotonic_ns()
        with self._cond:
            if self._stopping:
                return
            if self._bytes + len(text) > self._max_bytes:
                self.dropped += 1
                return
            self._pending.append((stamp, direction, text))
            self._bytes += len(text)
            self._cond.notify()

    @property
    def recording(self) -> bool:
        return not self._stopping

    def stop(self, timeout: float = 5.0) -> Path:
        """Stop recording, write what is buffered and close the file (within `timeout`).

        Idempotent. Returns the recording's path.
        """
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if self.dropped:
            logger.warning("the recording %s left out %d frames (the disk was too slow)",
                           self.path, self.dropped)
        return self.path

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        with self._file as out:
            done = False
            while not done:
                with self._cond:
                    while not self._pending and not self._stopping:
                        self._cond.wait()
                    batch = list(self._pending)
                    self._pending.clear()
                    self._bytes = 0
                    done = self._stopping
                try:
                    out.writelines(jsonl_line(stamp, direction, _data(redact(text, self._secret)))
                                   for stamp, direction, text in batch)
                    out.flush()
                except OSError as exc:
                    logger.error("stopped recording to %s: %s", self.path, exc)
                    with self._cond:
                        self._stopping = True
                    return


def _data(text: str) -> Any:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class ClientRecording:
    """Mixed into `Client`: `record()` and the recorder the reader and `_send` feed."""

    _api_key: str | None
    _recorder: Recorder | None = None

    def record(self, path: str | Path) -> Recorder:
        """Record every frame this client receives and sends, as JSONL, to `path`.

        The file is what `voicesync.scenarios.replay` reads: a session with the real
        platform becomes a regression test. The API key is redacted before anything is
        written; a slow disk never holds up the connection (see `Recorder.dropped`).
        Call `stop()` on the returned recorder (or use it as a context manager); `close()`
        stops it too. One recording at a time; any thread.
        """
        current = self._recorder
        if current is not None and current.recording:
            raise ConfigurationError(
                f"already recording to {current.path}; stop() that recorder first")
        self._recorder = Recorder(path, self._api_key)
        return self._recorder

    def _stop_recording(self, deadline: float, close: Callable[[], None]) -> None:
        """`close()`, then the recording (what `close()` read is in it) until `deadline`."""
        close()
        recorder = self._recorder
        if recorder is not None:
            recorder.stop(max(0.0, deadline - time.monotonic()))
