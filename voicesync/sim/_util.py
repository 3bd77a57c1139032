"""Small pure helpers of the simulator: agent slugs, ids, clocks and JSON shapes."""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

JsonDict = dict[str, Any]

_SPACE_RUN = re.compile(r"[_\s]+")
_NOT_SLUG = re.compile(r"[^a-z0-9-]")
_DASH_RUN = re.compile(r"-{2,}")
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def slugify(agent_id: str) -> str:
    """The platform's normal form of an agent id (docs/protocol.md §0): `My Agent` -> `my-agent`."""
    slug = _SPACE_RUN.sub("-", agent_id.lower())
    slug = _NOT_SLUG.sub("", slug)
    return _DASH_RUN.sub("-", slug).strip("-")


def new_id(prefix: str, length: int = 12) -> str:
    """A random id such as `msg_8b396e012697`."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def phone_call_id() -> str:
    """A Twilio-looking call SID, which is what phone call ids look like on the platform."""
    return "CA" + secrets.token_hex(16)


def epoch() -> float:
    return time.time()


def epoch_ms() -> int:
    return int(time.time() * 1000)


def text_field(frame: JsonDict, key: str) -> str | None:
    """`frame[key]` when it is a string, else None (client frames are untrusted)."""
    value = frame.get(key)
    return value if isinstance(value, str) else None
