"""History stores: where a call's record is kept (docs/protocol.md §7.4).

`MemoryStore`, `JSONFileStore`, or any object with the `HistoryStore` methods; public
through `voicesync.history` and `voicesync`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

logger = logging.getLogger(__name__)


class HistoryStore(Protocol):
    """Where call records are kept. Implementations must be safe to call from any thread."""

    def save(self, record: Mapping[str, Any]) -> None: ...
    def load(self, call_id: str) -> dict[str, Any] | None: ...
    def find_by_contact(self, contact: str, limit: int = 5) -> list[dict[str, Any]]: ...


def _contact_matches(record: Mapping[str, Any], contact: str) -> bool:
    return contact in (record.get("contact"), record.get("from"), record.get("from_"))


def _newest_first(records: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    records.sort(key=lambda r: r.get("ended_at") or r.get("updated_at") or 0, reverse=True)
    return records[:limit]


class MemoryStore:
    """Records in a dict, for tests and short-lived processes. Thread-safe."""

    def __init__(self) -> None:
        self._records: dict[str, str] = {}
        self._lock = threading.Lock()

    def save(self, record: Mapping[str, Any]) -> None:
        encoded = json.dumps(record, default=str)  # a copy the caller cannot mutate later
        with self._lock:
            self._records[str(record.get("call_id", ""))] = encoded

    def load(self, call_id: str) -> dict[str, Any] | None:
        with self._lock:
            encoded = self._records.get(call_id)
        return None if encoded is None else dict(json.loads(encoded))

    def find_by_contact(self, contact: str, limit: int = 5) -> list[dict[str, Any]]:
        with self._lock:
            records = [json.loads(r) for r in self._records.values()]
        return _newest_first([r for r in records if _contact_matches(r, contact)], limit)


class JSONFileStore:
    """One JSON file per call in `directory`, replaced atomically on each save. Thread-safe.

    The file name is derived from the call id (sanitised, plus a hash of the original), so an
    id from the wire can never name a path outside `directory`.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def path_for(self, call_id: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_-]", "_", call_id)[:64]
        digest = hashlib.sha256(call_id.encode()).hexdigest()[:16]
        return self.directory / f"call-{safe}-{digest}.json"

    def save(self, record: Mapping[str, Any]) -> None:
        path = self.path_for(str(record.get("call_id", "")))
        import tempfile  # late: most programs never save history to files

        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        try:
            # backslashreplace: a lone surrogate from the wire is written as its JSON escape
            with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as out:
                json.dump(record, out, default=str, ensure_ascii=False)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def load(self, call_id: str) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self.path_for(call_id).read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None

    def find_by_contact(self, contact: str, limit: int = 5) -> list[dict[str, Any]]:
        records = []
        for path in self.directory.glob("call-*.json"):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                logger.warning("history store: skipping unreadable %s", path.name)
                continue
            if isinstance(record, dict) and _contact_matches(record, contact):
                records.append(record)
        return _newest_first(records, limit)

