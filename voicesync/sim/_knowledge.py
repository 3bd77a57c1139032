"""A stand-in for the platform's management API: knowledge bases under ``/api/knowledge``,
model access under ``/api/models/access``; also the voice API's audio routes (`_audio.py`),
whose request bodies the simulator's WebSocket port cannot read.

The platform serves knowledge bases from a host apart from the voice API (its management
plane), so this is its own small HTTP server rather than part of the simulator's port:
``Rest(key, sim.http_url, knowledge_url=kb.url)``. In memory; retrieval ranks chunks by
how many query words they share (no embeddings). ``paid=False`` answers every request with
HTTP 402, as the platform does for plans without knowledge bases.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from typing_extensions import Self

from voicesync.sim._audio import audio_route, models_route
from voicesync.sim._util import JsonDict

logger = logging.getLogger(__name__)

Reply = tuple[HTTPStatus, JsonDict]
_PREFIX = "/api/knowledge"


class KnowledgeServer:
    """Knowledge bases over HTTP on loopback. Thread-safe; `start()`/`stop()` from any thread.

    Args:
        api_key: the bearer key to accept (None: any non-empty key).
        paid: False makes every request fail with 402 (a plan without knowledge bases).
        port: 0 picks a free port.
    """

    def __init__(self, api_key: str | None = None, *, paid: bool = True,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError(f"The knowledge stand-in binds loopback only, not {host!r}.")
        self.api_key, self.paid, self.host, self.port = api_key, paid, host, port
        self.lock = threading.Lock()
        self.bases: dict[str, JsonDict] = {}
        self.docs: dict[str, dict[str, JsonDict]] = {}  # kb id -> doc id -> doc (with text)
        self.reindexed: list[str] = []
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("Start the knowledge stand-in before asking for its URL.")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> Self:
        if self._server is None:
            self._server = _Server((self.host, self.port), self)
            self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                            name="voicesync-sim-knowledge", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        thread.join(timeout)
        server.server_close()
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ routes

    def authorized(self, auth: str) -> bool:
        scheme, _, key = auth.partition(" ")
        return scheme.lower() == "bearer" and bool(key) and key == (self.api_key or key)

    def route(self, method: str, path: str, auth: str, body: JsonDict) -> Reply:
        if not self.authorized(auth):
            return HTTPStatus.UNAUTHORIZED, {"error": "Invalid API key"}
        if not self.paid:
            return HTTPStatus.PAYMENT_REQUIRED, {"error": "Upgrade required"}
        parts = [p for p in path[len(_PREFIX):].split("/") if p]
        with self.lock:
            if not parts:
                return self._list() if method == "GET" else self._create(body)
            kb = self.bases.get(parts[0])
            if kb is None:
                return HTTPStatus.NOT_FOUND, {"error": f"No knowledge base {parts[0]}"}
            return self._on_base(method, kb, parts[1:], body)

    def _list(self) -> Reply:
        return HTTPStatus.OK, {"knowledgeBases": [self._public(kb) for kb in self.bases.values()]}

    def _create(self, body: JsonDict) -> Reply:
        name = body.get("name")
        if not isinstance(name, str) or not name:
            return HTTPStatus.BAD_REQUEST, {"error": "name is required"}
        kb_id = f"kb_{next(self._ids)}"
        self.bases[kb_id] = {"id": kb_id, "name": name, "description": body.get("description"),
                             "status": "ready"}
        self.docs[kb_id] = {}
        return HTTPStatus.OK, {"knowledgeBase": self._public(self.bases[kb_id])}

    def _on_base(self, method: str, kb: JsonDict, rest: list[str], body: JsonDict) -> Reply:
        docs = self.docs[kb["id"]]
        match (method, rest):
            case ("GET", []):
                return HTTPStatus.OK, {"knowledgeBase": self._public(kb),
                                       "docs": [_listing(d) for d in docs.values()]}
            case ("DELETE", []):
                del self.bases[kb["id"]], self.docs[kb["id"]]
                return HTTPStatus.OK, {"ok": True}
            case ("POST", ["reindex"]):
                self.reindexed.append(kb["id"])
                return HTTPStatus.OK, {"ok": True}
            case ("POST", ["docs"]):
                return self._push(docs, body)
            case ("POST", ["query"]):
                return HTTPStatus.OK, {"hits": _search(docs, str(body.get("query") or ""),
                                                       int(body.get("k") or 6))}
            case ("GET", ["docs", doc_id]) if doc_id in docs:
                return HTTPStatus.OK, {"doc": dict(docs[doc_id])}
            case ("DELETE", ["docs", doc_id]) if doc_id in docs:
                del docs[doc_id]
                return HTTPStatus.OK, {"ok": True}
        return HTTPStatus.NOT_FOUND, {"error": f"Not found: {method} {'/'.join(rest)}"}

    def _push(self, docs: dict[str, JsonDict], body: JsonDict) -> Reply:
        path, text = body.get("path"), body.get("text")
        if not isinstance(path, str) or not path or not isinstance(text, str):
            return HTTPStatus.BAD_REQUEST, {"error": "path and text are required"}
        doc_id = "doc_" + hashlib.sha1(path.encode()).hexdigest()[:12]  # the path is the key
        docs[doc_id] = {"id": doc_id, "path": path, "title": body.get("title") or path,
                        "bytes": len(text.encode()), "text": text}
        return HTTPStatus.OK, {"doc": _listing(docs[doc_id])}

    def _public(self, kb: JsonDict) -> JsonDict:
        return {**kb, "docCount": len(self.docs.get(kb["id"], {}))}


def _listing(doc: JsonDict) -> JsonDict:
    return {k: v for k, v in doc.items() if k != "text"}


def _search(docs: dict[str, JsonDict], query: str, k: int) -> list[JsonDict]:
    words = set(re.findall(r"\w+", query.lower()))
    hits = []
    for doc in docs.values():
        for chunk in (c.strip() for c in doc["text"].split("\n\n") if c.strip()):
            shared = words & set(re.findall(r"\w+", chunk.lower()))
            if shared:
                hits.append({"score": round(len(shared) / len(words), 3), "text": chunk,
                             "doc_title": doc["title"], "doc_path": doc["path"]})
    return sorted(hits, key=lambda h: -h["score"])[:max(0, k)]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("knowledge stand-in: " + format, *args)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        path = url.path.rstrip("/")
        auth = self.headers.get("Authorization", "")
        if path.startswith(("/v1/audio/", "/api/models/")):
            if not self.server.owner.authorized(auth):
                self._send_json(HTTPStatus.UNAUTHORIZED, {"error": "Invalid API key"})
            elif path == "/api/models/access" and self.command == "GET":
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                self._send_json(HTTPStatus.OK, models_route(query))
            else:
                self._send(*audio_route(self.command, path,
                                        self.headers.get("Content-Type", ""), raw))
            return
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):
            status, reply = HTTPStatus.BAD_REQUEST, {"error": "the body must be a JSON object"}
        elif not (path == _PREFIX or path.startswith(_PREFIX + "/")):
            status, reply = HTTPStatus.NOT_FOUND, {"error": f"Not found: {path}"}
        else:
            status, reply = self.server.owner.route(self.command, path, auth, body)
        self._send_json(status, reply)

    def _send_json(self, status: HTTPStatus, reply: JsonDict) -> None:
        self._send(status, "application/json", json.dumps(reply).encode(), {})

    def _send(self, status: HTTPStatus, content_type: str, data: bytes,
              headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(data)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], owner: KnowledgeServer) -> None:
        self.owner = owner
        self.numbers = itertools.count(1)
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        threading.Thread(target=self.process_request_thread, args=(request, client_address),
                         name=f"voicesync-sim-knowledge-conn-{next(self.numbers)}",
                         daemon=True).start()
