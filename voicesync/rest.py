"""The platform's REST surface: browser tokens, voices, phone numbers, balance, knowledge
bases, standalone speech and transcription (`audio`), agents' memory, model access.

Plain blocking calls on `requests`, safe from any thread, each with a timeout. Results are
frozen dataclasses; failures are typed: `AuthenticationError` (key refused),
`ConnectError` (unreachable, or a redirect the key must not follow), `NotFoundError`,
`UpgradeRequiredError` (a paid feature) and `RestError` for any other refusal::

    rest = client.rest                      # or voicesync.rest.Rest(api_key, url)
    voices = rest.voices(provider="elevenlabs", language="es")
    token = rest.create_token("stream", ["support", "sales"], scope="observe")
    wav = rest.audio.speech("Hello!", "elevenlabs/sarah").audio
    facts = rest.memory("support").get("+15550100001").facts

Knowledge bases live on the platform's management API, a different host from the voice
API: `knowledge_url` (default: ``PINECALL_PLAYGROUND_URL``, else the hosted one).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from voicesync._codec import int_field, number_field, text_field
from voicesync._rest import (
    Answer,
    base_url,
    json_object,
    refuse_plain,
    request,
    request_bytes,
    rows,
)
from voicesync._rest_audio import Audio, Speech, Transcription, TranscriptSegment
from voicesync._rest_memory import Memory, MemoryContact, MemoryFact, MemoryHit, ModelAccess, Models
from voicesync._rest_stt import (
    FinalTranscript,
    PartialTranscript,
    TranscriptionDone,
    TranscriptionStream,
    TranscriptWord,
)
from voicesync.errors import ConfigurationError, NotFoundError, RestError, UpgradeRequiredError

__all__ = [
    "Audio", "Balance", "FinalTranscript", "KnowledgeBase", "KnowledgeDoc", "KnowledgeHit",
    "Memory", "MemoryContact", "MemoryFact", "MemoryHit", "ModelAccess", "Models",
    "NotFoundError", "PartialTranscript", "PhoneNumber", "Rest", "RestError", "Speech", "Token",
    "TranscriptSegment", "TranscriptWord", "Transcription", "TranscriptionDone",
    "TranscriptionStream", "UpgradeRequiredError", "Voice", "VoiceLanguage",
]

DEFAULT_KNOWLEDGE_URL = "https://playground.pinecall.io"
KNOWLEDGE_URL_ENV = "PINECALL_PLAYGROUND_URL"
Channel = Literal["webrtc", "chat", "stream"]
Scope = Literal["observe", "participate", "supervise"]

for _error in (RestError, NotFoundError, UpgradeRequiredError):
    _error.__module__ = __name__  # reprs and tracebacks name where users import them
del _error


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
        knowledge_url: the management API base that serves knowledge bases; default
            ``$PINECALL_PLAYGROUND_URL``, else the hosted one.
        timeout: seconds each request may take.
        audio_url: the base of the ``/v1/audio`` routes; default `url` (the platform
            serves them on the voice API; the simulator on `KnowledgeServer`, as its
            WebSocket port reads no request bodies).
        allow_insecure: permit ``http://`` to a non-loopback host for any URL (the key
            travels in the clear). Without it such a URL raises `ConfigurationError`
            naming the setting it came from.
    """

    def __init__(self, api_key: str, url: str, *, knowledge_url: str | None = None,
                 audio_url: str | None = None, timeout: float = 10.0,
                 allow_insecure: bool = False) -> None:
        if not api_key:
            raise ConfigurationError("Rest needs an API key")
        self._api_key = api_key
        self.url = base_url(url, "url")
        self.audio_url = base_url(audio_url, "audio_url") if audio_url else self.url
        knowledge, setting = knowledge_base_url(knowledge_url)
        self.knowledge_url = knowledge
        refuse_plain({"url": self.url, "audio_url": self.audio_url, setting: knowledge},
                     allow_insecure)
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<voicesync.rest.Rest {self.url} api_key=***>"

    def _with_timeout(self, timeout: float) -> Rest:
        other = copy.copy(self)
        other.timeout = timeout
        return other

    def _call(self, method: str, url: str, *, params: Mapping[str, str] | None = None,
              body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return request(method, url, self._api_key, self.timeout, params=params, body=body)

    def _send(self, method: str, path: str, **options: Any) -> Answer:
        """A request to the audio routes; the answer's body as it came."""
        return request_bytes(method, f"{self.audio_url}{path}", self._api_key, self.timeout,
                             **options)

    def _json(self, answer: Answer) -> dict[str, Any]:
        return json_object(answer, "the audio API")

    @property
    def audio(self) -> Audio:
        """Standalone text-to-speech (`Audio.speech`) and transcription (`Audio.transcribe`)."""
        return Audio(self)

    @property
    def models(self) -> Models:
        """Which STT, TTS and LLM models the account may use (on `knowledge_url`'s host)."""
        return Models(self)

    def memory(self, agent_id: str) -> Memory:
        """What agent `agent_id` remembers about its contacts: search, get, forget."""
        return Memory(self, agent_id)

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
        token = text_field(data, "token")
        if not token:
            raise RestError("the token response has no 'token' string", status=200)
        expires = int_field(data, "expires_in")
        return Token(token, text_field(data, "server") or self.url,
                     expires if expires is not None and expires > 0 else 60)

    # ------------------------------------------------------------------ account

    def voices(self, provider: str = "elevenlabs", language: str | None = None) -> list[Voice]:
        """The provider's voices, optionally only those speaking `language` (a prefix: "es")."""
        params = {"provider": provider, **({"language": language} if language else {})}
        data = self._call("GET", f"{self.url}/api/sdk/voices", params=params)
        voices = [_voice(raw, provider) for raw in rows(data, "voices")]
        if language:
            wanted = language.lower()
            voices = [v for v in voices
                      if any(lang.code.lower().startswith(wanted) for lang in v.languages)]
        return voices

    def phone_numbers(self) -> list[PhoneNumber]:
        """The account's phone numbers."""
        data = self._call("GET", f"{self.url}/api/sdk/phone-numbers")
        return [PhoneNumber(text_field(p, "number"),
                            text_field(p, "name") or text_field(p, "number"),
                            text_field(p, "sid"), p.get("isSdk") is True)
                for p in rows(data, "phones") or rows(data, "phoneNumbers")]

    def balance(self) -> Balance:
        """The account's telephony balance."""
        data = self._call("GET", f"{self.url}/api/sdk/twilio-balance")
        amount = _decimal(data, "balance")
        if data.get("success") is not True or amount is None:
            raise RestError("the platform reported no balance for this account", status=200)
        return Balance(amount, text_field(data, "currency"))

    # ------------------------------------------------------------------ knowledge bases

    def knowledge_bases(self) -> list[KnowledgeBase]:
        """Every knowledge base of the account."""
        return [_knowledge_base(kb) for kb in rows(self._kb("GET"), "knowledgeBases")]

    def create_knowledge_base(self, name: str, description: str | None = None) -> KnowledgeBase:
        data = self._kb("POST", "", {"name": name, "description": description})
        return _knowledge_base(_obj(data, "knowledgeBase"))

    def knowledge_base(self, kb_id: str) -> tuple[KnowledgeBase, list[KnowledgeDoc]]:
        """A knowledge base and its documents (without their text)."""
        data = self._kb("GET", f"/{quote(kb_id, safe='')}")
        return (_knowledge_base(_obj(data, "knowledgeBase")),
                [_doc(d) for d in rows(data, "docs")])

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
        return [KnowledgeHit(number_field(h, "score") or 0.0, text_field(h, "text"),
                             _optional(h, "heading"), _optional(h, "doc_title"),
                             _optional(h, "doc_path"))
                for h in rows(data, "hits")]


def knowledge_base_url(knowledge_url: str | None = None) -> tuple[str, str]:
    """(the knowledge-base API's base URL, the setting it came from): `knowledge_url`, else
    ``$PINECALL_PLAYGROUND_URL``, else the hosted one."""
    if knowledge_url:
        return base_url(knowledge_url, "knowledge_url"), "knowledge_url"
    configured = os.environ.get(KNOWLEDGE_URL_ENV)
    if configured:
        return base_url(configured, KNOWLEDGE_URL_ENV), KNOWLEDGE_URL_ENV
    return DEFAULT_KNOWLEDGE_URL, "knowledge_url"


def _obj(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise RestError(f"the response has no '{key}' object", status=200)
    return value


# Every field is modelled into its documented type (a text field that is not a string is
# "", an optional one None, a count that is not an integer 0, a score that is not a finite
# number 0.0), so a hostile answer gives a well-typed result or a RestError, never a raw
# TypeError or ValueError.


def _optional(raw: Mapping[str, Any], key: str) -> str | None:
    return text_field(raw, key) or None


def _count(raw: Mapping[str, Any], key: str) -> int:
    value = int_field(raw, key)
    return value if value is not None and value >= 0 else 0


def _decimal(raw: Mapping[str, Any], key: str) -> str | None:
    """A decimal amount as text: a string as sent, a number written out; else None."""
    value = raw.get(key)
    if isinstance(value, str):
        return value
    whole = int_field(raw, key)
    if whole is not None:
        return str(whole)
    number = number_field(raw, key)
    return None if number is None else repr(number)


def _voice(raw: Mapping[str, Any], provider: str) -> Voice:
    listed = raw.get("languages")
    languages = tuple(
        VoiceLanguage(lang, lang) if isinstance(lang, str)
        else VoiceLanguage(text_field(lang, "code"), text_field(lang, "name"))
        for lang in (listed if isinstance(listed, list) else ()) if isinstance(lang, (str, dict)))
    return Voice(text_field(raw, "id") or text_field(raw, "voice_id"), text_field(raw, "name"),
                 text_field(raw, "provider") or provider, _optional(raw, "alias"),
                 _optional(raw, "gender"), _optional(raw, "style"), languages,
                 _optional(raw, "description"), _optional(raw, "preview_url"))


def _knowledge_base(raw: Mapping[str, Any]) -> KnowledgeBase:
    return KnowledgeBase(text_field(raw, "id"), text_field(raw, "name"),
                         text_field(raw, "status"), _count(raw, "docCount"),
                         _optional(raw, "description"))


def _doc(raw: Mapping[str, Any]) -> KnowledgeDoc:
    text = raw.get("text")
    return KnowledgeDoc(text_field(raw, "id"), text_field(raw, "path"), text_field(raw, "title"),
                        _count(raw, "bytes"), text if isinstance(text, str) else None)
