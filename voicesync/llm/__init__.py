"""Bring-your-own-LLM: stream OpenAI or Anthropic replies into a call, with tools and barge-in.

`stream_openai` / `stream_anthropic` write each text delta into a `ReplyStream` and, when the
caller barges in, shut the provider's HTTP stream at once so the model stops generating (and
billing). `OpenAIAgent` / `AnthropicAgent` are ready-made agents built on them. The `openai`
and `anthropic` packages are the ``llm`` extra and are imported only when a client is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from voicesync.llm._anthropic import anthropic_reply, stream_anthropic
from voicesync.llm._base import ProviderError, ReplyStreamLike, close_provider_stream
from voicesync.llm._openai import openai_reply, stream_openai

if TYPE_CHECKING:
    from voicesync.llm.agents import AnthropicAgent, OpenAIAgent

__all__ = [
    "AnthropicAgent",
    "OpenAIAgent",
    "ProviderError",
    "ReplyStreamLike",
    "anthropic_reply",
    "close_provider_stream",
    "openai_reply",
    "stream_anthropic",
    "stream_openai",
]


def __getattr__(name: str) -> Any:
    # The agents subclass voicesync.Agent; importing them lazily keeps the helpers usable alone.
    if name in ("OpenAIAgent", "AnthropicAgent"):
        from voicesync.llm import agents

        return getattr(agents, name)
    raise AttributeError(f"module 'voicesync.llm' has no attribute {name!r}")
