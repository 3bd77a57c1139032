"""Returning callers: a new call starts with the caller's recent conversations.

An opt-in for an agent with a history store::

    agent = client.agent("frontdesk", llm="openai/gpt-4.1-mini", history_store=store)
    voicesync.returning.restore_returning_callers(agent, conversations=5)

When a call starts, the store is asked for the caller's newest conversations (by the
caller's number, the key the SDK saves records under) and they are put in front of the new
conversation: through ``history.set`` for the platform's model, or as one ``earlier`` note
in `call.history` for a model the app runs (`OpenAIAgent`, `AnthropicAgent`, its own
`on_turn`), which reaches the model as a system message. A restored conversation is never
saved again as part of the new one, so records do not snowball.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from voicesync.errors import ConfigurationError, VoiceSyncError

if TYPE_CHECKING:
    from voicesync.agent import Agent
    from voicesync.call import Call

logger = logging.getLogger(__name__)

__all__ = ["EARLIER_ROLE", "earlier_messages", "restore_returning_callers"]

#: The `call.history` role of the restored note (not user/assistant, so never re-saved).
EARLIER_ROLE = "earlier"
_SPEAKERS = {"user": "caller", "assistant": "you"}


def earlier_messages(records: Sequence[Mapping[str, Any]], *, skip_call_id: str = "",
                     conversations: int = 5, max_messages: int = 20) -> list[dict[str, str]]:
    """User/assistant messages of the newest `conversations` records, oldest first.

    `records` come newest first (as `HistoryStore.find_by_contact` returns them); the
    record of `skip_call_id` (the call being restored into) is left out, and only the last
    `max_messages` messages are kept.
    """
    chosen = [r for r in records if r.get("call_id") != skip_call_id][:max(0, conversations)]
    messages: list[dict[str, str]] = []
    for record in reversed(chosen):
        for message in record.get("transcript") or ():
            if (isinstance(message, Mapping) and message.get("role") in _SPEAKERS
                    and isinstance(message.get("content"), str) and message["content"]):
                messages.append({"role": message["role"], "content": message["content"]})
    return messages[-max_messages:] if max_messages > 0 else []


def restore_returning_callers(agent: Agent, *, conversations: int = 5,
                              max_messages: int = 20) -> Callable[[Call], None]:
    """Start each call of `agent` with the caller's `conversations` newest conversations.

    Needs ``agent.history_store``. Runs on the call's handler lane when the call starts,
    before its first turn is handled. A store or platform failure is reported on the
    client's ``error`` event and the call goes on without the restore. WhatsApp sessions
    are restored too (by the contact's number). Returns the handler, registered for
    ``call.started`` and ``whatsapp.started`` (``agent.off`` both to stop).
    Any thread.
    """
    if agent.history_store is None:
        raise ConfigurationError(
            f"agent {agent.id!r} has no history_store: returning callers are found in it; "
            "pass history_store=voicesync.JSONFileStore(...) (or MemoryStore())")

    def restore(call: Call) -> None:
        store = agent.history_store
        if store is None or not call.from_:
            return
        try:
            records = store.find_by_contact(call.from_, limit=conversations + 1)
            messages = earlier_messages(records, skip_call_id=call.id,
                                        conversations=conversations, max_messages=max_messages)
            if not messages:
                return
            if agent.config.get("llm"):
                call.set_history(messages)
            else:
                call.history.add(EARLIER_ROLE, "Earlier conversations with this caller:\n" +
                                 "\n".join(f"{_SPEAKERS[m['role']]}: {m['content']}"
                                           for m in messages), first=True)
            logger.info("restored %d earlier messages into call %s", len(messages), call.id)
        except Exception as exc:
            error = VoiceSyncError(f"could not restore the earlier conversations of call "
                                   f"{call.id}: {exc}")
            error.__cause__ = exc
            call._uplink.report(error)

    agent.on("call.started", restore)
    agent.on("whatsapp.started", restore)  # a WhatsApp contact returns too (their number)
    return restore
