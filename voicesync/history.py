"""Per-call conversation history: what the caller said and what they actually heard.

The SDK feeds it from the wire (``user.message``, ``bot.speaking``/``bot.word``/
``message.confirmed``/``bot.interrupted``/``bot.finished``). A bot reply counts only the
words the caller heard; a reply cut off by the caller keeps those words and ends with
`INTERRUPTED_MARK`, so the model knows it was interrupted there, e.g.
``"I can book you on— [interrupted by the caller]"``.

Stores persist a call's record (docs/protocol.md §7.4): `MemoryStore`, `JSONFileStore`, or any
object with the `HistoryStore` methods. Writes are debounced onto the `voicesync-timer` thread
(`_timer.py`; a client's own, or the shared one), so feeding the history never blocks on I/O.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from voicesync import _timer
from voicesync._history_stores import HistoryStore, JSONFileStore, MemoryStore

logger = logging.getLogger(__name__)

__all__ = [
    "INTERRUPTED_MARK", "History", "HistoryMessage", "HistoryStore", "JSONFileStore",
    "MemoryStore",
]

INTERRUPTED_MARK = "— [interrupted by the caller]"
_INTERRUPTED_SILENT = "[interrupted by the caller before anything was said]"
_CALL_STARTED = "[the call started]"
SAVE_DELAY = 0.2  # seconds a burst of changes waits before it is written (docs/protocol.md §7.4)


@dataclass(frozen=True)
class HistoryMessage:
    """One entry: who spoke, what was heard, and whether the caller cut it off."""

    role: str
    text: str
    message_id: str = ""
    interrupted: bool = False

    @property
    def content(self) -> str:
        """The text as a model should read it: cut-off replies end with `INTERRUPTED_MARK`."""
        if not self.interrupted:
            return self.text
        return f"{self.text}{INTERRUPTED_MARK}" if self.text else _INTERRUPTED_SILENT


@dataclass(slots=True)
class _Entry:
    role: str
    message_id: str = ""
    text: str = ""  # user and app entries; for the bot, the text it was asked to say
    words: list[str] = field(default_factory=list)
    confirmed: str | None = None
    words_spoken: int | None = None
    interrupted: bool = False
    withdrawn: bool = False  # the app cancelled it (not the caller): unheard, it is left out
    finished: bool = False

    def heard(self) -> str:
        """What the caller heard of this entry."""
        if self.role != "assistant" or not self.message_id:
            return self.text
        words = " ".join(w for w in self.words if w)
        if not self.interrupted:
            if self.confirmed is not None:
                return self.confirmed
            return words or (self.text if self.finished else "")
        # Cut off: the platform may confirm the spoken part or the whole reply, so never keep
        # more words than were spoken. A word counts once its bot.word was sent, so when
        # `words_spoken` says more words than arrived, the reply's own text supplies them.
        received = len([w for w in self.words if w])
        spoken = max(received, self.words_spoken or 0)
        known = bool(self.words) or self.words_spoken is not None
        longer = len(self.text.split()) > received
        full = self.confirmed if self.confirmed is not None else (
            self.text if longer else words)
        if known and len(full.split()) > spoken:
            return words if len(self.words) >= spoken else " ".join(full.split()[:spoken])
        return full


class History:
    """What the caller said and what they actually heard, for one call. Thread-safe.

    The feeding methods (`user_message`, `bot_*`, `add`) are cheap and never block on I/O:
    the SDK calls them on its reader thread. Readers (`messages`, `to_openai`,
    `to_anthropic`) may be called from any thread and return snapshots.
    """

    def __init__(self, call_id: str = "", *, agent_id: str = "",
                 store: HistoryStore | None = None, timers: _timer.Timers | None = None) -> None:
        self.call_id = call_id
        self.agent_id = agent_id
        self.store = store
        self._timers = timers or _timer.shared()  # a call's: its client's (ended by close())
        self._entries: list[_Entry] = []
        self._by_id: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()
        self._extra: dict[str, object] = {}
        self._started_at = time.time()
        self._closed = False
        self._version = 0
        self._pending = False  # a debounced save is scheduled
        self._save_lock = threading.Lock()
        self._saved_version = 0
        self._idle = threading.Condition(self._save_lock)

    # --- feeding (reader thread) -----------------------------------------------------------
    def _entry(self, role: str, message_id: str) -> _Entry:
        entry = self._by_id.get((role, message_id)) if message_id else None
        if entry is None:
            entry = _Entry(role=role, message_id=message_id)
            self._entries.append(entry)
            if message_id:
                self._by_id[(role, message_id)] = entry
        return entry

    def _changed(self) -> None:
        # Called with self._lock held.
        self._version += 1
        if self.store is not None and not self._pending and not self._closed:
            self._pending = True
            self._timers.schedule(SAVE_DELAY, self._debounced)

    def user_message(self, message_id: str, text: str, *, supersedes: bool = False) -> None:
        """Record what the caller said; the same `message_id` again replaces the text.

        `supersedes`: the caller kept talking (a continuation) and `text` is the whole
        utterance; it replaces the newest user entry, which held only its first part, and
        is placed after what the bot said meanwhile (the cut-off reply the caller heard
        before going on), so each utterance appears once and the history ends with it.
        """
        with self._lock:
            if supersedes:
                old = next((e for e in reversed(self._entries) if e.role == "user"), None)
                if old is not None and old.message_id != message_id:
                    self._entries.remove(old)
                    self._by_id.pop(("user", old.message_id), None)
            self._entry("user", message_id).text = text
            self._changed()

    def bot_speaking(self, message_id: str, text: str = "") -> None:
        """A bot message started playing; `text` is its full text when known in advance."""
        with self._lock:
            entry = self._entry("assistant", message_id)
            entry.text = text or entry.text
            self._changed()

    def bot_word(self, message_id: str, word: str, index: int | None = None) -> None:
        """A word was played. `index` (the wire's ``word_index``) makes a re-sent word harmless."""
        with self._lock:
            entry = self._entry("assistant", message_id)
            # After a cut only words sent before it count (one arriving late still does).
            late = entry.interrupted and (index is None or index >= (entry.words_spoken or 0))
            if late or entry.finished:
                return
            if index is None:
                entry.words.append(word)
            else:
                entry.words.extend([""] * (index + 1 - len(entry.words)))
                entry.words[index] = word
            self._changed()

    def bot_confirmed(self, message_id: str, text: str) -> None:
        """The final text of a bot message (for a cut-off one, possibly only the spoken part)."""
        with self._lock:
            self._entry("assistant", message_id).confirmed = text
            self._changed()

    def bot_interrupted(self, message_id: str, *, words_spoken: int | None = None,
                        by_caller: bool = True) -> None:
        """The reply was cut off: keep only the words spoken, and mark it. Not `by_caller`
        (the app's own cancel/clear), a message nobody heard a word of is left out."""
        with self._lock:
            entry = self._entry("assistant", message_id)
            entry.interrupted = True
            entry.withdrawn = not by_caller
            if words_spoken is not None:
                entry.words_spoken = words_spoken
            self._changed()

    def bot_finished(self, message_id: str) -> None:
        """The bot message played to the end."""
        with self._lock:
            self._entry("assistant", message_id).finished = True
            self._changed()

    def add(self, role: str, content: str, *, first: bool = False) -> None:
        """Add an entry of the app's own (a tool note, a system remark); `first` puts it
        before everything else (context the conversation follows on). Any thread."""
        with self._lock:
            entry = _Entry(role=role, message_id="", text=content)
            self._entries.insert(0 if first else len(self._entries), entry)
            self._changed()

    # --- reading (any thread) --------------------------------------------------------------
    def messages(self) -> list[HistoryMessage]:
        """A snapshot, oldest first. A bot message nobody heard a word of is left out, unless
        the caller cut it off (then it reads as interrupted before anything was said)."""
        with self._lock:
            entries = [(e.role, e.heard(), e.message_id, e.interrupted, e.withdrawn)
                       for e in self._entries]
        return [HistoryMessage(role, text, mid, cut) for role, text, mid, cut, gone in entries
                if text or (cut and not gone)]

    def __len__(self) -> int:
        return len(self.messages())

    def to_openai(self, system: str | None = None) -> list[dict[str, Any]]:
        """Chat Completions messages (also valid Responses ``input``), `system` first.

        Roles other than user/assistant/system (e.g. app tool notes) become system messages
        prefixed with ``[role]``.
        """
        out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
        for m in self.messages():
            if m.role in ("user", "assistant", "system"):
                out.append({"role": m.role, "content": m.content})
            else:
                out.append({"role": "system", "content": f"[{m.role}] {m.content}"})
        return out

    def to_anthropic(self) -> list[dict[str, Any]]:
        """Anthropic Messages: alternating roles, starting with the user.

        Consecutive same-role entries are merged (blank line between). Non-user/assistant
        entries are user text prefixed with ``[role]``. When the bot spoke first (a greeting),
        a ``[the call started]`` user turn is put in front, as the API requires.
        """
        out: list[dict[str, Any]] = []
        for m in self.messages():
            role = "assistant" if m.role == "assistant" else "user"
            text = m.content if m.role in ("user", "assistant") else f"[{m.role}] {m.content}"
            if out and out[-1]["role"] == role:
                out[-1]["content"] += "\n\n" + text
            else:
                out.append({"role": role, "content": text})
        if out and out[0]["role"] == "assistant":
            out.insert(0, {"role": "user", "content": _CALL_STARTED})
        return out

    def record(self) -> dict[str, Any]:
        """The record a store saves for this call."""
        messages = self.messages()
        with self._lock:
            extra = dict(self._extra)
            closed = self._closed
        return {
            "call_id": self.call_id, "agent_id": self.agent_id, "started_at": self._started_at,
            "updated_at": time.time(), "status": "ended" if closed else "active",
            "messages": [{"role": m.role, "text": m.text, "message_id": m.message_id,
                          "interrupted": m.interrupted} for m in messages],
            "transcript": [{"role": m.role, "content": m.content} for m in messages
                           if m.role in ("user", "assistant")],
            **extra,
        }

    # --- persistence -----------------------------------------------------------------------
    def _debounced(self) -> None:
        with self._lock:
            self._pending = False
        self._save()

    def _save(self) -> None:
        with self._lock:
            version = self._version
        if self.store is None:
            return
        with self._save_lock:
            if version <= self._saved_version:
                return  # a later save already wrote this state (record() is always current)
            try:
                self.store.save(self.record())
            except Exception:
                logger.warning("history: could not save call %s", self.call_id, exc_info=True)
            self._saved_version = max(self._saved_version, version)
            self._idle.notify_all()

    def close(self, **record: object) -> None:
        """The call ended: merge `record` (e.g. ``reason``, ``contact``) and save a last time.

        Returns at once; the save runs on the ``voicesync-timer`` thread (see `flush`).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for entry in self._entries:
                # Still playing when the call ended (hang-up, dropped connection): the
                # caller heard only the words so far.
                if entry.role == "assistant" and entry.words and not entry.finished:
                    entry.interrupted = True
            self._extra.update(record)
            self._extra.setdefault("ended_at", time.time())
            self._version += 1
        if self.store is not None:  # now, not when a debounced save is due (that one
            self._timers.schedule(0.0, self._save)  # then finds nothing new to write)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every change so far is saved; False if `timeout` passed first."""
        if self.store is None:
            return True
        with self._lock:
            version = self._version
        self._timers.schedule(0.0, self._save)
        with self._save_lock:
            return self._idle.wait_for(lambda: self._saved_version >= version, timeout)
