"""`Rest.memory(agent_id)` and `Rest.models`: what an agent remembers about its contacts
(``/api/memory`` on the voice API) and which models the account may use
(``/api/models/access`` on the management API, beside knowledge bases).

Memory is a store, not a session: the agent need not be online. Blocking; any thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from voicesync._codec import int_field, number_field, text_field
from voicesync._rest import rows
from voicesync.errors import RestError

if TYPE_CHECKING:
    from voicesync.rest import Rest

Service = Literal["stt", "tts", "llm"]


@dataclass(frozen=True)
class MemoryHit:
    """One remembered fact matching a search, best first (`score` None: not ranked)."""

    contact: str
    kind: str
    text: str
    score: float | None = None


@dataclass(frozen=True)
class MemoryFact:
    id: str
    kind: str
    text: str
    confidence: float
    valid_from: str
    valid_to: str | None = None
    supersedes: str | None = None
    call_id: str | None = None  # the call it was learnt in


@dataclass(frozen=True)
class MemoryContact:
    """All an agent remembers about one contact; `memory_md` is what its prompt sees."""

    contact: str
    revision: int
    facts: tuple[MemoryFact, ...]
    memory_md: str


@dataclass(frozen=True)
class ModelAccess:
    """Whether the account may use one model: `allowed` is the verdict, `reason` one of
    ``ok``, ``unknown_model``, ``plan_restricted``, ``byok_key_required``."""

    service: str
    model: str
    allowed: bool
    reason: str
    provider: str | None = None
    exists: bool = False
    managed: bool = False
    plan_allowed: bool = False
    has_key: bool = False
    requires_key: bool = False


class Memory:
    """One agent's memory, through a `Rest`. Immutable; any thread."""

    def __init__(self, rest: Rest, agent_id: str) -> None:
        if not agent_id:
            raise ValueError("memory needs an agent id")
        self._rest, self.agent_id = rest, agent_id

    def search(self, query: str, *, contact: str | None = None, k: int = 6) -> list[MemoryHit]:
        """The `k` facts that best match `query`, across contacts or for one `contact`."""
        params = {"agent": self.agent_id, "q": query, "k": str(k),
                  **({"contact": contact} if contact else {})}
        data = self._call("GET", "/search", params)
        return [MemoryHit(text_field(h, "contact"), text_field(h, "kind"), text_field(h, "text"),
                          number_field(h, "score")) for h in rows(data, "hits")]

    def get(self, contact: str) -> MemoryContact:
        """Everything remembered about `contact` (a phone number, a WhatsApp id...)."""
        data = self._call("GET", self._contact_path(contact))
        return MemoryContact(text_field(data, "contact") or contact,
                             int_field(data, "revision") or 0,
                             tuple(_fact(f) for f in rows(data, "facts")),
                             text_field(data, "memory_md"))

    def forget(self, contact: str) -> bool:
        """Erase what the agent remembers about `contact`; False if there was nothing."""
        return self._call("DELETE", self._contact_path(contact)).get("forgotten") is True

    def _contact_path(self, contact: str) -> str:
        if not contact:
            raise ValueError("memory needs a contact")
        return f"/{quote(self.agent_id, safe='')}/{quote(contact, safe='')}"

    def _call(self, method: str, path: str, params: Mapping[str, str] | None = None
              ) -> dict[str, Any]:
        data = self._rest._call(method, f"{self._rest.url}/api/memory{path}", params=params)
        if data.get("success") is False:
            raise RestError(f"memory {method} {path} was refused: "
                            f"{text_field(data, 'error') or 'no reason given'}", status=200)
        return data


class Models:
    """Model access of the account, through a `Rest`. Immutable; any thread."""

    def __init__(self, rest: Rest) -> None:
        self._rest = rest

    def access(self, service: Service, model: str) -> ModelAccess:
        """May the account use `model` (``"provider/model"``) for `service`, and if not,
        why: the plan, or a provider key it must add first."""
        return _access(self._get({"service": service, "model": model}))

    def allowed(self, service: Service, model: str) -> bool:
        """`access(...).allowed`."""
        return self.access(service, model).allowed

    def catalog(self) -> list[ModelAccess]:
        """Access for every model the platform prices."""
        return [_access(m) for m in rows(self._get({}), "models")]

    def _get(self, params: Mapping[str, str]) -> dict[str, Any]:
        url = f"{self._rest.knowledge_url}/api/models/access"
        return self._rest._call("GET", url, params=params)


def _fact(raw: Mapping[str, Any]) -> MemoryFact:
    source = raw.get("source")
    call = text_field(source, "call") if isinstance(source, dict) else ""
    return MemoryFact(text_field(raw, "id"), text_field(raw, "kind"), text_field(raw, "text"),
                      number_field(raw, "confidence") or 0.0, text_field(raw, "valid_from"),
                      text_field(raw, "valid_to") or None, text_field(raw, "supersedes") or None,
                      call or None)


def _access(raw: Mapping[str, Any]) -> ModelAccess:
    def flag(key: str) -> bool:
        return raw.get(key) is True

    return ModelAccess(text_field(raw, "service"), text_field(raw, "model"), flag("allowed"),
                       text_field(raw, "reason") or ("ok" if flag("allowed") else ""),
                       text_field(raw, "provider") or None, flag("exists"), flag("managed"),
                       flag("planAllowed"), flag("hasKey"), flag("requiresKey"))
