"""`OpenAIAgent` and `AnthropicAgent`: agents that answer each turn with a provider's model.

Give them a model name and instructions; each caller turn streams the model's reply into
the call, with the agent's tools, and a barge-in stops the model mid-reply::

    class Concierge(voicesync.llm.OpenAIAgent):
        id = "concierge"
        model = "gpt-4o-mini"
        instructions = "You are a hotel concierge. Keep answers short."

    Concierge().run()
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from voicesync._extras import needs_extra
from voicesync.agent import Agent
from voicesync.errors import ConfigurationError
from voicesync.llm._anthropic import anthropic_reply
from voicesync.llm._openai import openai_reply
from voicesync.tools import Tool, ToolResult

if TYPE_CHECKING:
    from voicesync.call import Call
    from voicesync.events import Turn
    from voicesync.history import History

logger = logging.getLogger("voicesync.llm")

__all__ = ["AnthropicAgent", "OpenAIAgent"]

_WAITING = "[the caller is waiting for a reply]"


class _ModelAgent(Agent):
    """What both ready-made agents share: the provider client, tools and tool notes."""

    request: ClassVar[Mapping[str, Any]] = {}  # extra create() arguments, e.g. temperature

    def __init__(self, id: str | None = None, *, model: str | None = None,
                 instructions: str | None = None, provider_client: object = None,
                 request: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        self._model = model or type(self).model
        if not self._model:
            raise ConfigurationError(
                f"{type(self).__name__} needs a model name: set the class attribute `model` "
                "or pass model=...")
        self._instructions = instructions if instructions is not None else type(
            self).instructions
        self._provider_client = provider_client
        self._provider_lock = threading.Lock()
        self._request = {**type(self).request, **(request or {})}
        super().__init__(id, **kwargs)

    def _new_provider_client(self) -> object:
        raise NotImplementedError

    @property
    def provider_client(self) -> Any:
        """The provider client: the one given, else a default one built on first use."""
        with self._provider_lock:
            if self._provider_client is None:
                self._provider_client = self._new_provider_client()
            return self._provider_client

    def _tools(self) -> list[Tool[..., Any]]:
        return [t for t in self._declared_tools() if isinstance(t, Tool)]

    def _tool_note(self, history: History) -> Callable[[ToolResult], None]:
        # Tool results stay in the history so later turns can refer to them; an ephemeral
        # tool's result served this reply only.
        def note(result: ToolResult) -> None:
            if not result.ephemeral:
                history.add("tool", f"{result.name}: {result.text}")
        return note


def _has_user_message(history: History, turn: Turn) -> bool:
    return any(m.role == "user" and m.message_id == turn.message_id for m in history.messages())


class OpenAIAgent(_ModelAgent):
    """An agent whose replies come from an OpenAI model (Chat Completions or Responses).

    Args:
        id: the agent id (or the class attribute `id`).
        model: the model name (or the class attribute `model`).
        instructions: the system prompt (or the class attribute `instructions`).
        openai_client: an ``openai.OpenAI`` to use; by default one is built from the
            environment (``OPENAI_API_KEY``) on the first turn.
        api: ``"chat"`` (Chat Completions) or ``"responses"``.
        request: extra ``create()`` arguments (temperature, max_tokens...).
        **kwargs: as `voicesync.Agent` (client, phone, voice, history_store, ...).
    """

    api: ClassVar[Literal["chat", "responses"]] = "chat"

    def __init__(self, id: str | None = None, *, openai_client: object = None,
                 api: Literal["chat", "responses"] | None = None, **kwargs: Any) -> None:
        self._api = api or type(self).api
        super().__init__(id, provider_client=openai_client, **kwargs)

    def _new_provider_client(self) -> object:
        with needs_extra("voicesync.llm.OpenAIAgent"):
            import openai

        return openai.OpenAI()

    def on_turn(self, turn: Turn, call: Call, history: History) -> None:
        """Stream the model's answer to `turn` into the call (handler thread; blocks)."""
        messages = history.to_openai(system=self._instructions)
        if not _has_user_message(history, turn) and turn.text:
            messages.append({"role": "user", "content": turn.text})
        request: dict[str, Any] = {"model": self._model, **self._request,
                                   "messages" if self._api == "chat" else "input": messages}
        openai_reply(call.reply_stream(turn), self.provider_client, api=self._api,
                     tools=self._tools() or None, on_tool=self._tool_note(history), call=call,
                     **request)


class AnthropicAgent(_ModelAgent):
    """An agent whose replies come from an Anthropic model (Messages API).

    Args:
        id: the agent id (or the class attribute `id`).
        model: the model name (or the class attribute `model`).
        instructions: the system prompt (or the class attribute `instructions`).
        anthropic_client: an ``anthropic.Anthropic`` to use; by default one is built from
            the environment (``ANTHROPIC_API_KEY``) on the first turn.
        max_tokens: the reply budget Anthropic requires (default 1024).
        request: extra ``messages.create()`` arguments.
        **kwargs: as `voicesync.Agent`.
    """

    max_tokens: ClassVar[int] = 1024

    def __init__(self, id: str | None = None, *, anthropic_client: object = None,
                 max_tokens: int | None = None, **kwargs: Any) -> None:
        self._max_tokens = max_tokens or type(self).max_tokens
        super().__init__(id, provider_client=anthropic_client, **kwargs)

    def _new_provider_client(self) -> object:
        with needs_extra("voicesync.llm.AnthropicAgent"):
            import anthropic

        return anthropic.Anthropic()

    def on_turn(self, turn: Turn, call: Call, history: History) -> None:
        """Stream the model's answer to `turn` into the call (handler thread; blocks)."""
        messages = history.to_anthropic()
        missing = turn.text if not _has_user_message(history, turn) and turn.text else ""
        if messages and messages[-1]["role"] == "user":
            if missing:
                messages[-1]["content"] += "\n\n" + missing
        else:
            messages.append({"role": "user", "content": missing or _WAITING})
        request: dict[str, Any] = {"model": self._model, "max_tokens": self._max_tokens,
                                   **self._request, "messages": messages}
        if self._instructions:
            request["system"] = self._instructions
        anthropic_reply(call.reply_stream(turn), self.provider_client,
                        tools=self._tools() or None, on_tool=self._tool_note(history), call=call,
                     **request)
