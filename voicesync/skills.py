"""Skills (docs/protocol.md §3.5): instructions, tools and a knowledge base that the
platform's model loads only when it needs them.

While a skill is active on a call, the platform adds its `instructions` to the prompt,
shows its `tools` to the model and searches its knowledge base; otherwise the model sees
only its name and description. It becomes active when the model asks for it
(``activation="model"``, the default), when your code calls `call.load_skill(name)`
(``"manual"``), or from the start (``"always"``).

voicesync runs a skill's `@voicesync.tool` functions like the agent's own tools, whether or
not the skill is active at that moment: which tools the model may call is the platform's
decision, answering them is voicesync's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from voicesync.errors import ConfigurationError
from voicesync.tools import Tool

if TYPE_CHECKING:
    from voicesync.agent import Agent

__all__ = ["Activation", "Skill", "attach", "skill", "skill_tools"]

Activation = Literal["model", "manual", "always"]
_ACTIVATIONS = ("model", "manual", "always")


@dataclass(frozen=True)
class Skill:
    """One skill; build it with `voicesync.skill(...)`. Immutable, shareable."""

    name: str
    description: str
    instructions: str | None = None
    tools: tuple[Any, ...] = ()
    knowledge_base: str | None = None
    rag_top_k: int | None = None
    activation: Activation = "model"

    def to_wire(self) -> dict[str, Any]:
        """The skill as `agent.create` / `agent.configure` declare it (§3.5)."""
        wire: dict[str, Any] = {"name": self.name, "description": self.description}
        if self.instructions:
            wire["instructions"] = self.instructions
        wire["tools"] = [t.to_wire() if isinstance(t, Tool) else t for t in self.tools]
        if self.knowledge_base:
            wire["knowledge_base"] = self.knowledge_base
        if self.rag_top_k is not None:
            wire["rag_top_k"] = self.rag_top_k
        wire["activation"] = self.activation
        return wire


def skill(
    name: str, description: str, *, instructions: str | None = None,
    tools: Iterable[Any] = (), knowledge_base: str | None = None,
    rag_top_k: int | None = None, activation: Activation = "model",
) -> Skill:
    """A skill for ``client.agent(..., skills=[...])`` or `agent.skill(...)`.

    `description` is what the model reads to decide when to load it; `tools` are
    `@voicesync.tool` functions (run by voicesync) or plain tool definitions;
    `knowledge_base` is a knowledge base id. Raises ConfigurationError for an empty name
    or an unknown `activation`.
    """
    if not name or not description:
        raise ConfigurationError("a skill needs a name and a description (the model reads "
                                 "the description to decide when to load it)")
    if activation not in _ACTIVATIONS:
        raise ConfigurationError(f"activation must be one of {', '.join(_ACTIVATIONS)}, "
                                 f"not {activation!r}")
    return Skill(name, description, instructions, tuple(tools), knowledge_base, rag_top_k,
                 activation)


def skill_tools(skills: Iterable[Any]) -> list[Tool[..., Any]]:
    """The runnable tools of every `Skill` in `skills` (plain dicts declare, not run)."""
    return [t for s in skills if isinstance(s, Skill) for t in s.tools if isinstance(t, Tool)]


def attach(agent: Agent, new: Skill) -> bool:
    """Add `new` to the agent's skills (replacing one of the same name) and send the
    whole list (``agent.configure {skills}``); kept for re-registration. Any thread."""
    with agent._lock:
        kept = [s for s in agent.config.get("skills") or ()
                if (s.name if isinstance(s, Skill) else _wire_name(s)) != new.name]
        return agent.update(skills=[*kept, new])


def _wire_name(entry: Any) -> Any:
    return entry.get("name") if isinstance(entry, dict) else None
