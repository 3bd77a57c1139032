"""The platform's agent memory, in memory: facts per (agent, contact), served under
``/api/memory`` on the simulator's port (GET and DELETE take no body, so they fit it).

The simulator learns no facts from calls by itself: a test seeds them with
`Simulator.memory.remember(...)`. Search ranks facts by the query words they share.
"""

from __future__ import annotations

import itertools
import re
import threading
from http import HTTPStatus
from urllib.parse import unquote

from voicesync.sim._util import JsonDict, slugify

Reply = tuple[HTTPStatus, JsonDict]


class MemoryStore:
    """Remembered facts. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._facts: dict[tuple[str, str], list[JsonDict]] = {}
        self._revisions: dict[tuple[str, str], int] = {}
        self._ids = itertools.count(1)

    def remember(self, agent_id: str, contact: str, text: str, *, kind: str = "fact",
                 call_id: str | None = None) -> None:
        """Add a fact the agent learnt about `contact` (in `call_id`, if given)."""
        key = (slugify(agent_id), contact)
        fact: JsonDict = {"id": f"fact_{next(self._ids)}", "kind": kind, "text": text,
                          "confidence": 0.9, "valid_from": "2026-01-01T00:00:00Z",
                          "valid_to": None, **({"source": {"call": call_id}} if call_id else {})}
        with self._lock:
            self._facts.setdefault(key, []).append(fact)
            self._revisions[key] = self._revisions.get(key, 0) + 1

    def route(self, method: str, path: str, query: dict[str, str]) -> Reply:
        parts = [unquote(p) for p in path.split("/")[3:]]  # after /api/memory
        if method == "GET" and parts == ["search"]:
            return self._search(query)
        if len(parts) == 2 and method in ("GET", "DELETE"):
            key = (slugify(parts[0]), parts[1])
            with self._lock:
                if method == "DELETE":
                    forgotten = self._facts.pop(key, None) is not None
                    self._revisions.pop(key, None)
                    return HTTPStatus.OK, {"success": True, "forgotten": forgotten}
                facts = list(self._facts.get(key, ()))
                revision = self._revisions.get(key, 0)
            lines = "\n".join(f"- ({f['kind']}) {f['text']}" for f in facts)
            return HTTPStatus.OK, {"success": True, "contact": parts[1], "revision": revision,
                                   "facts": facts, "memory_md": f"# Memory\n{lines}\n"}
        return HTTPStatus.NOT_FOUND, {"success": False, "error": f"Not found: {method} {path}"}

    def _search(self, query: dict[str, str]) -> Reply:
        agent, contact = slugify(query.get("agent", "")), query.get("contact")
        if not agent or not query.get("q"):
            return HTTPStatus.BAD_REQUEST, {"success": False, "error": "agent and q are required"}
        words = set(re.findall(r"\w+", query["q"].lower()))
        with self._lock:
            facts = [(c, f) for (a, c), listed in self._facts.items() for f in listed
                     if a == agent and (not contact or c == contact)]
        hits = []
        for who, fact in facts:
            shared = words & set(re.findall(r"\w+", fact["text"].lower()))
            if shared:
                hits.append({"contact": who, "kind": fact["kind"], "text": fact["text"],
                             "score": round(len(shared) / len(words), 3)})
        hits.sort(key=lambda h: -h["score"])
        k = query.get("k", "6")
        return HTTPStatus.OK, {"success": True, "hits": hits[:int(k) if k.isdigit() else 6]}
