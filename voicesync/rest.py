"""The platform's REST surface: browser tokens, voices, phone numbers, balance, knowledge bases.

Plain blocking calls on `requests`, safe from any thread, each with a timeout. Results are
frozen dataclasses; failures are typed: `AuthenticationError` (key refused),
`ConnectError` (unreachable, or a redirect the key must not follow), `NotFoundError`,
`UpgradeRequiredError` (a paid feature) and `RestError` for any other refusal::

    rest = client.rest                      # or voicesync.rest.Rest(api_key, url)
    voices = rest.voices(provider="elevenlabs", language="es")
    token = rest.create_token("stream", ["support", "sales"], scope="observe")

Knowledge bases live on the platform's management API, a different host from the voice
API: `knowledge_url` (default: ``PINECALL_PLAYGROUND_URL``, else the hosted one).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from voicesync._log import redact
from voicesync.errors import AuthenticationError, ConfigurationError, ConnectError, ServerError

__all__ = [
    "Balance", "KnowledgeBase", "KnowledgeDoc", "KnowledgeHit", "NotFoundError", "PhoneNumber",
    "Rest", "RestError", "Token", "UpgradeRequiredError", "Voice", "VoiceLanguage",
]

DEFAULT_KNOWLEDGE_URL = "https://playground.pinecall.io"
Channel = Literal["webrtc", "chat", "stream"]
Scope = Literal["observe", "participate", "supervise"]


class RestError(ServerError):
    """The platform refused a REST request; `status` is the HTTP status."""

    def __init__(self, message: str, *, status: int, server_message: str = "") -> None:
        super().__init__(message, code=str(status), server_message=server_message)
        self.status = status


class NotFoundError(RestError):
    """The agent, call, knowledge base or document named in the request does not exist."""


class UpgradeRequiredError(RestError):
    """The feature is not on the account's plan (HTTP 402); upgrade the plan to use it."""


@dataclass(frozen=True)
class Token:
    """A browser token: pass `token` (and `server`) to the browser; it expires quickly."""

    token: str
    server: str
    expires_in: int


@dataclass(frozen=True)
class VoiceLanguage:
    code: str
    name: str


@dataclass(frozen=True)
class Voice:
    """A TTS voice; use ``f"{provider}/{alias}"`` as an agent's `voice`."""

    id: str
    name: str
    provider: str
    alias: str | None = None
    gender: str | None = None
    style: str | None = None
    languages: tuple[VoiceLanguage, ...] = ()
    description: str | None = None
    preview_url: str | None = None


@dataclass(frozen=True)
class PhoneNumber:
    """A number of the account; `is_sdk` is True while an SDK agent has claimed it."""

    number: str
    name: str
    sid: str
    is_sdk: bool = False


@dataclass(frozen=True)
class Balance:
    """The telephony balance, as the platform reports it (a decimal string)."""

    balance: str
    currency: str


@dataclass(frozen=True)
class KnowledgeBase:
    id: str
    name: str
    status: str
    doc_count: int = 0
    description: str | None = None


@dataclass(frozen=True)
class KnowledgeDoc:
    """A document of a knowledge base; `text` is set only by `Rest.knowledge_doc`."""

    id: str
    path: str
    title: str
    bytes: int = 0
    text: str | None = None


@dataclass(frozen=True)
class KnowledgeHit:
    """One retrieved chunk, best first."""

    score: float
    text: str
    heading: str | None = None
    doc_title: str | None = None
    doc_path: str | None = None


class Rest:
    """The platform's REST calls with one API key. Immutable; any thread.

    Args:
        api_key: the platform API key (sent as a bearer token, never logged).
        url: the voice API's REST base, e.g. ``https://voice.example`` (`Client.http_url`).
        knowledge_url: the management API base that serves knowledge bases.
        timeout: seconds each request may take.
        allow_insecure: permit ``http://`` to a non-loopback host (the key travels in the
            clear).
    """

    def __init__(self, api_key: str, url: str, *, knowledge_url: str | None = None,
                 timeout: float = 10.0, allow_insecure: bool = False) -> None:
        if not api_key:
            raise ConfigurationError("Rest needs an API key")
        self._api_key = api_key
        self.url = _base(url, allow_insecure)
        self.knowledge_url = _base(knowledge_url or os.environ.get("PINECALL_PLAYGROUND_URL")
                                   or DEFAULT_KNOWLEDGE_URL, allow_insecure)
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<voicesync.rest.Rest {self.url} api_key=***>"

    def _call(self, method: str, url: str, *, params: Mapping[str, str] | None = None,
              body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return request(method, url, self._api_key, self.timeout, params=params, body=body)

    def _kb(self, method: str, path: str = "", body: Mapping[str, Any] | None = None
            ) -> dict[str, Any]:
        return self._call(method, f"{self.knowledge_url}/api/knowledge{path}", body=body)

    # ------------------------------------------------------------------ tokens

    def create_token(self, channel: Channel, agent_id: str | Sequence[str], *,
                     metadata: Mapping[str, Any] | None = None, scope: Scope | None = None,
                     call_id: str | None = None) -> Token:
        """Mint a browser token for one agent, or (``stream`` only) a set of agents.

        `metadata` is sealed into the token (the call's `metadata`); `scope` is
        ``observe`` (read-only), ``participate`` or ``supervise``; `call_id` narrows an
        observe/supervise token to one call. Does not wait for agent registration: use
        `Client.create_token` / `Agent.create_token` for agents of this process.
        """
        agents = [agent_id] if isinstance(agent_id, str) else list(agent_id)
        if not agents or not all(agents):
            raise ConfigurationError("create_token needs at least one agent id")
        params = {"agent_id": ",".join(agents)}
        if metadata:
            params["metadata"] = json.dumps(dict(metadata), separators=(",", ":"))
        if scope:
            params["scope"] = scope
        if call_id:
            params["call_id"] = call_id
        data = self._call("GET", f"{self.url}/{channel}/token", params=params)
        token = data.get("token")
        if not isinstance(token, str):
            raise RestError("the token response has no 'token' field", status=200)
        expires = data.get("expires_in")
        return Token(token, str(data.get("server") or self.url),
                     expires if isinstance(expires, int) else 60)

    # ------------------------------------------------------------------ account

    def voices(self, provider: str = "elevenlabs", language: str | None = None) -> list[Voice]:
        """The provider's voices, optionally only those speaking `language` (a prefix: "es")."""
        params = {"provider": provider, **({"language": language} if language else {})}
        data = self._call("GET", f"{self.url}/api/sdk/voices", params=params)
        voices = [_voice(raw, provider) for raw in _rows(data, "voices")]
        if language:
            wanted = language.lower()
            voices = [v for v in voices
                      if any(lang.code.lower().startswith(wanted) for lang in v.languages)]
        return voices

    def phone_numbers(self) -> list[PhoneNumber]:
        """The account's phone numbers."""
        data = self._call("GET", f"{self.url}/api/sdk/phone-numbers")
        return [PhoneNumber(str(p.get("number") or ""), str(p.get("name") or p.get("number")
                                                             or ""),
                            str(p.get("sid") or ""), bool(p.get("isSdk")))
                for p in _rows(data, "phones") or _rows(data, "phoneNumbers")]

    def balance(self) -> Balance:
        """The account's telephony balance."""
        data = self._call("GET", f"{self.url}/api/sdk/twilio-balance")
        if not data.get("success"):
            raise RestError("the platform reported no balance for this account", status=200)
        return Balance(str(data.get("balance", "")), str(data.get("currency", "")))

    # ------------------------------------------------------------------ knowledge bases

    def knowledge_bases(self) -> list[KnowledgeBase]:
        """Every knowledge base of the account."""
        return [_knowledge_base(kb) for kb in _rows(self._kb("GET"), "knowledgeBases")]

    def create_knowledge_base(self, name: str, description: str | None = None) -> KnowledgeBase:
        data = self._kb("POST", "", {"name": name, "description": description})
        return _knowledge_base(_obj(data, "knowledgeBase"))

    def knowledge_base(self, kb_id: str) -> tuple[KnowledgeBase, list[KnowledgeDoc]]:
        """A knowledge base and its documents (without their text)."""
        data = self._kb("GET", f"/{quote(kb_id, safe='')}")
        return (_knowledge_base(_obj(data, "knowledgeBase")),
                [_doc(d) for d in _rows(data, "docs")])

    def delete_knowledge_base(self, kb_id: str) -> None:
        self._kb("DELETE", f"/{quote(kb_id, safe='')}")

    def reindex_knowledge_base(self, kb_id: str) -> None:
        """Rebuild the search index after changing documents."""
        self._kb("POST", f"/{quote(kb_id, safe='')}/reindex")

    def push_doc(self, kb_id: str, path: str, text: str, *, title: str | None = None
                 ) -> KnowledgeDoc:
        """Add a document, or replace the one with the same `path`."""
        data = self._kb("POST", f"/{quote(kb_id, safe='')}/docs",
                        {"path": path, "title": title, "text": text})
        return _doc(_obj(data, "doc"))

    def knowledge_doc(self, kb_id: str, doc_id: str) -> KnowledgeDoc:
        """One document, with its text."""
        data = self._kb("GET", f"/{quote(kb_id, safe='')}/docs/{quote(doc_id, safe='')}")
        return _doc(_obj(data, "doc"))

    def delete_doc(self, kb_id: str, doc_id: str) -> None:
        self._kb("DELETE", f"/{quote(kb_id, safe='')}/docs/{quote(doc_id, safe='')}")

    def query_knowledge(self, kb_id: str, query: str, *, k: int = 6) -> list[KnowledgeHit]:
        """The `k` chunks that best match `query` (retrieval only, no model)."""
        data = self._kb("POST", f"/{quote(kb_id, safe='')}/query", {"query": query, "k": k})
        return [KnowledgeHit(float(h.get("score") or 0.0), str(h.get("text") or ""),
                             h.get("heading"), h.get("doc_title"), h.get("doc_path"))
                for h in _rows(data, "hits")]


def request(method: str, url: str, api_key: str, timeout: float, *,
            params: Mapping[str, str] | None = None,
            body: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One JSON request with the key as a bearer token; failures become typed errors.

    Redirects are not followed (the key would go to a host nobody checked), and a loopback
    URL never goes through a proxy from the environment.
    """
    import requests  # late: most programs never make a REST call (`import voicesync` stays fast)

    from voicesync.client import _is_loopback

    try:
        with requests.Session() as session:
            session.trust_env = not _is_loopback(url)
            response = session.request(method, url, params=dict(params or {}), json=body,
                                        timeout=timeout, allow_redirects=False,
                                        headers={"Authorization": f"Bearer {api_key}"})
    except requests.RequestException as exc:
        raise ConnectError(f"could not reach {url}: {type(exc).__name__}", url=url) from None
    if response.is_redirect:
        raise ConnectError(f"{url} answered with a redirect (HTTP {response.status_code}); "
                           "the API key is not sent on: use the final address", url=url)
    text = redact(response.text, api_key)  # a server may echo the key back
    try:
        data = json.loads(text) if text.strip() else {}
    except (ValueError, RecursionError):
        data = {}
    data = data if isinstance(data, dict) else {}
    status = response.status_code
    if status in (401, 403):
        raise AuthenticationError(f"the platform refused the API key for {url} (HTTP {status})",
                                  url=url)
    if status < 400:
        return data
    detail = str(data.get("detail") or data.get("error") or text[:200].strip()
                 or f"HTTP {status}")
    kind = {402: UpgradeRequiredError, 404: NotFoundError}.get(status, RestError)
    hint = {402: "; the feature is not on the account's plan: upgrade it to use it",
            404: "; check the id"}.get(status, "")
    raise kind(f"{method} {url} failed (HTTP {status}): {detail}{hint}", status=status,
               server_message=detail)


def _base(url: str, allow_insecure: bool) -> str:
    from voicesync.client import _is_loopback  # late: the client module builds Rest objects

    url = url.strip().rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise ConfigurationError(f"a REST URL must start with https:// or http://: {url}")
    if url.startswith("http://") and not _is_loopback(url) and not allow_insecure:
        raise ConfigurationError(f"refusing unencrypted {url}: the API key would travel in the "
                                 "clear; use https://, or pass allow_insecure=True")
    return url


def _rows(data: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    rows = data.get(key)
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _obj(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise RestError(f"the response has no '{key}' object", status=200)
    return value


def _voice(raw: Mapping[str, Any], provider: str) -> Voice:
    languages = tuple(VoiceLanguage(lang, lang) if isinstance(lang, str)
                      else VoiceLanguage(str(lang.get("code") or ""), str(lang.get("name") or ""))
                      for lang in raw.get("languages") or () if isinstance(lang, (str, dict)))
    return Voice(str(raw.get("id") or raw.get("voice_id") or ""), str(raw.get("name") or ""),
                 str(raw.get("provider") or provider), raw.get("alias"), raw.get("gender"),
                 raw.get("style"), languages, raw.get("description"), raw.get("preview_url"))


def _knowledge_base(raw: Mapping[str, Any]) -> KnowledgeBase:
    return KnowledgeBase(str(raw.get("id") or ""), str(raw.get("name") or ""),
                         str(raw.get("status") or ""), int(raw.get("docCount") or 0),
                         raw.get("description"))


def _doc(raw: Mapping[str, Any]) -> KnowledgeDoc:
    text = raw.get("text")
    return KnowledgeDoc(str(raw.get("id") or ""), str(raw.get("path") or ""),
                        str(raw.get("title") or ""), int(raw.get("bytes") or 0),
                        text if isinstance(text, str) else None)
