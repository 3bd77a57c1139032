"""The outbox's writer: frames queued while it is busy go out together, in order."""

from __future__ import annotations

import threading

import pytest

from voicesync import _outbox
from voicesync._outbox import Outbox


def test_frames_queued_while_the_writer_writes_go_out_in_one_batch() -> None:
    writes: list[bytes] = []
    first_write, release = threading.Event(), threading.Event()

    def write(data: memoryview) -> int:
        writes.append(bytes(data))
        first_write.set()
        release.wait(5.0)  # the socket is slow to take the first frame
        return len(data)

    outbox = Outbox(write, max_bytes=1 << 20, stall_timeout=5.0, on_stall=lambda: None)
    outbox.start()
    assert outbox.put(b"first")
    assert first_write.wait(5.0)
    frames = [b"frame-%d;" % i for i in range(100)]
    for frame in frames:  # the writer is busy: each one only queues, nobody is woken
        assert outbox.put(frame)
    release.set()
    assert outbox.flush(5.0)
    assert writes == [b"first", b"".join(frames)]
    outbox.stop()
    outbox.join(5.0)


def test_a_frame_put_right_after_another_is_left_to_the_writer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_outbox, "BUSY_GAP", 30.0)  # "right after" even on a slow machine
    direct: list[bytes] = []
    written: list[bytes] = []
    wrote = threading.Event()

    def write(data: memoryview) -> int:
        written.append(bytes(data))
        wrote.set()
        return len(data)

    def try_write(data: bytes) -> int:
        direct.append(data)
        return len(data)

    outbox = Outbox(write, max_bytes=1 << 20, stall_timeout=5.0, on_stall=lambda: None,
                    try_write=try_write)
    outbox.start()
    assert outbox.put(b"alone")  # idle and quiet: written on this thread
    assert outbox.put(b"close behind")  # within BUSY_GAP: the writer thread sends it
    assert wrote.wait(5.0) and outbox.flush(5.0)
    assert (direct, written) == ([b"alone"], [b"close behind"])
    outbox.stop()
    outbox.join(5.0)
