"""Recording files: a session's frames as JSONL, one JSON object a line
(``{"ts_ns", "direction": "in"|"out", "data"}``), and the captured platform fixture
format ``{"frames": [{"event", "data"}]}`` (camelCase fields), read back as `RecordedFrame`s.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voicesync._recording import jsonl_line


@dataclass(frozen=True)
class RecordedFrame:
    ts_ns: int
    direction: str
    data: dict[str, Any] | None

    @property
    def event(self) -> str | None:
        value = self.data.get("event") if self.data else None
        return value if isinstance(value, str) else None

    @property
    def call_id(self) -> str | None:
        if not self.data:
            return None
        value = self.data.get("call_id", self.data.get("session_id"))
        return value if isinstance(value, str) else None

    def get(self, key: str, default: Any = None) -> Any:
        return default if self.data is None else self.data.get(key, default)


def write_jsonl(path: str | Path, frames: Iterable[Any]) -> Path:
    """Write frames (the simulator's `Frame`s, or anything with ts_ns/direction/data)."""
    target = Path(path)
    with target.open("w", encoding="utf-8") as out:
        for frame in frames:
            out.write(jsonl_line(frame.ts_ns, frame.direction, frame.data))
    return target


def read_recording(path: str | Path) -> list[RecordedFrame]:
    """A JSONL recording, or a captured `{"frames": [...]}` JSON file."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        doc = json.loads(text)  # one JSON document: the captured format
    except ValueError:
        doc = None  # several: JSONL
    if isinstance(doc, dict) and isinstance(doc.get("frames"), list):
        return [_captured(i, item) for i, item in enumerate(doc["frames"])]
    frames = []
    for line in text.splitlines():
        if line.strip():
            raw = json.loads(line)
            frames.append(RecordedFrame(int(raw.get("ts_ns", 0)), str(raw.get("direction", "out")),
                                        raw.get("data")))
    return frames


def _captured(index: int, item: dict[str, Any]) -> RecordedFrame:
    data = {_snake(k): v for k, v in dict(item.get("data") or {}).items()}
    data["event"] = item.get("event", data.get("event"))
    return RecordedFrame(index, "out", data)


def _snake(key: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in key)
