"""The platform's REST endpoints on the WebSocket's own host:port (token minting, voices, phones,
agents' memory).

Served from websockets' `process_request` hook: a request that is not a WebSocket upgrade
gets a JSON answer and the connection closes. Only requests without a body parse (routes
that take one are served by `KnowledgeServer`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection

from voicesync.sim._platform import Platform, TokenGrant
from voicesync.sim._stt_stream import STREAM_PATH
from voicesync.sim._util import JsonDict, slugify

logger = logging.getLogger(__name__)

TOKEN_PATHS = {"/webrtc/token": "webrtc", "/chat/token": "chat", "/stream/token": "stream"}
SCOPES = ("observe", "participate", "supervise")
BALANCE = {"balance": "25.00", "currency": "USD"}  # what /api/sdk/twilio-balance reports

_VOICES: dict[str, list[tuple[str, str, str, list[str]]]] = {
    "elevenlabs": [("sarah", "Sarah", "female", ["en"]),
                   ("claire", "Claire", "female", ["en", "fr"]),
                   ("valentina", "Valentina", "female", ["es"]),
                   ("adam", "Adam", "male", ["en"])],
    "cartesia": [("yumiko", "Yumiko", "female", ["en", "ja"])],
    "polly": [("lucia", "Lucia", "female", ["es"]), ("matthew", "Matthew", "male", ["en"])],
}

Reply = tuple[HTTPStatus, JsonDict]
ProcessRequest = Callable[[ServerConnection, Request], Response | None]


def make_process_request(platform: Platform, base_url: Callable[[], str]) -> ProcessRequest:
    def process_request(ws: ServerConnection, request: Request) -> Response | None:
        threading.current_thread().name = f"voicesync-sim-conn-{ws.id.hex[:8]}"
        if request.headers.get("Upgrade", "").lower() == "websocket":
            if request.path.startswith(STREAM_PATH) and not _authorized(platform, request):
                return ws.respond(HTTPStatus.UNAUTHORIZED, "Invalid API key\n")
            return None
        try:
            status, body = route(platform, request, base_url())
        except Exception:
            logger.exception("simulator REST handler failed for %s", request.path)
            status, body = HTTPStatus.INTERNAL_SERVER_ERROR, {"detail": "internal error"}
        response = ws.respond(status, json.dumps(body))
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = "application/json"
        return response

    return process_request


def _authorized(platform: Platform, request: Request) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    expected = platform.settings.api_key
    return scheme.lower() == "bearer" and bool(key) and (expected is None or key == expected)


def route(platform: Platform, request: Request, base_url: str) -> Reply:
    parts = urlsplit(request.path)
    path = parts.path.rstrip("/") or "/"
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if path in TOKEN_PATHS:
        return _mint(platform, request, TOKEN_PATHS[path], query, base_url)
    if path == "/api/sdk/voices":
        return HTTPStatus.OK, {"success": True, "voices": _voices(query)}
    if path == "/api/sdk/phone-numbers":
        if not _authorized(platform, request):
            return HTTPStatus.UNAUTHORIZED, {"detail": "Invalid API key"}
        return HTTPStatus.OK, {"success": True, "phones": _phones(platform)}
    if path == "/api/sdk/twilio-balance":
        if not _authorized(platform, request):
            return HTTPStatus.UNAUTHORIZED, {"detail": "Invalid API key"}
        return HTTPStatus.OK, {"success": True, **BALANCE}
    if path.startswith("/api/memory/"):
        if not _authorized(platform, request):
            return HTTPStatus.UNAUTHORIZED, {"success": False, "error": "Invalid API key"}
        return platform.memory.route(request.method, path, query)
    if path == "/health":
        return HTTPStatus.OK, {"ok": True}
    return HTTPStatus.NOT_FOUND, {"detail": f"Not found: {path}"}


def _mint(platform: Platform, request: Request, channel: str, query: dict[str, str],
          base_url: str) -> Reply:
    if not _authorized(platform, request):
        return HTTPStatus.UNAUTHORIZED, {"detail": "Invalid API key"}
    agent_ids = [a for a in query.get("agent_id", "").split(",") if a]
    if not agent_ids:
        return HTTPStatus.BAD_REQUEST, {"detail": "agent_id is required"}
    if len(agent_ids) > 1 and channel != "stream":
        return HTTPStatus.BAD_REQUEST, {"detail": f"a {channel} token is for one agent"}
    scope, call_id = query.get("scope", ""), query.get("call_id", "")
    if scope and scope not in SCOPES:
        return HTTPStatus.BAD_REQUEST, {"detail": f"scope must be one of {', '.join(SCOPES)}"}
    metadata: Any = {}
    if "metadata" in query:
        try:
            metadata = json.loads(query["metadata"])
        except ValueError:
            metadata = None
        if not isinstance(metadata, dict):
            return HTTPStatus.BAD_REQUEST, {"detail": "metadata must be a JSON object"}
    slugs = tuple(slugify(a) for a in agent_ids)
    with platform.lock:
        for agent_id, slug in zip(agent_ids, slugs, strict=True):
            if slug not in platform.agents:
                return HTTPStatus.NOT_FOUND, {"detail": f"Agent '{agent_id}' is not connected"}
        if call_id and (call_id not in platform.calls
                        or platform.calls[call_id].agent_slug not in slugs):
            return HTTPStatus.NOT_FOUND, {"detail": f"Call '{call_id}' is not a call of "
                                          f"{', '.join(agent_ids)}"}
        token = f"{channel}_" + secrets.token_urlsafe(24)
        platform.tokens[token] = TokenGrant(token, slugs[0], channel, metadata, scope, call_id,
                                            slugs)
    return HTTPStatus.OK, {"token": token, "server": base_url, "expires_in": 60}


def _voices(query: dict[str, str]) -> list[JsonDict]:
    provider = query.get("provider", "elevenlabs")
    language = query.get("language", "").lower()
    return [
        {"id": f"{provider}-{alias}", "voice_id": f"{provider}-{alias}", "name": name,
         "alias": alias, "gender": gender, "style": "conversational",
         "languages": [{"code": code, "name": code} for code in codes],
         "description": f"{name} (simulated {provider} voice)"}
        for alias, name, gender, codes in _VOICES.get(provider, [])
        if not language or any(code.startswith(language) for code in codes)
    ]


def _phones(platform: Platform) -> list[JsonDict]:
    with platform.lock:
        claimed = set(platform.phones)
        numbers = list(dict.fromkeys([*platform.settings.phone_numbers, *sorted(claimed)]))
    return [{"number": n, "name": n, "sid": "PN" + hashlib.md5(n.encode()).hexdigest(),
             "isSdk": n in claimed} for n in numbers]
