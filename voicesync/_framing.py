"""Outbound WebSocket frames, built here rather than by websocket-client: its frame
building asks os.urandom for every frame's mask key (a system call that releases the
GIL) and masks in several Python calls; this costs about a quarter of that per frame."""

from __future__ import annotations

import collections
import os
import struct

MASK_KEYS = 1024  # mask keys drawn from os.urandom at a time
_mask_keys: collections.deque[bytes] = collections.deque()


def mask_key() -> bytes:
    """A fresh random mask key (RFC 6455 §5.3) from a pool refilled 4 KiB at a time. Any
    thread: deque.popleft() is atomic, so no key is handed out twice; two threads that
    find the pool empty both refill it."""
    try:
        return _mask_keys.popleft()
    except IndexError:
        pool = os.urandom(4 * MASK_KEYS)
        _mask_keys.extend(pool[i:i + 4] for i in range(4, len(pool), 4))
        return pool[:4]


def frame(payload: bytes, opcode: int) -> bytes:
    """One final, masked client frame (RFC 6455 §5.2)."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    key = mask_key()
    if not size:
        return header + key
    # XOR as one big integer: a few C calls instead of a Python loop over the bytes.
    pad = key * ((size >> 2) + 1)
    masked = (int.from_bytes(payload, "little")
              ^ int.from_bytes(pad[:size], "little")).to_bytes(size, "little")
    return header + key + masked
