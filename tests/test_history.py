"""History: what the caller heard, the cut-off mark, provider conversions, stores, threads."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from voicesync.history import (
    INTERRUPTED_MARK,
    History,
    HistoryMessage,
    JSONFileStore,
    MemoryStore,
)


def _spoken(history: History, message_id: str, words: list[str]) -> None:
    history.bot_speaking(message_id)
    for index, word in enumerate(words):
        history.bot_word(message_id, word, index)


def test_a_finished_reply_is_its_confirmed_text() -> None:
    h = History("CA1")
    h.user_message("u1", "Hi")
    _spoken(h, "m1", ["Hello", "there."])
    h.bot_confirmed("m1", "Hello there.")
    h.bot_finished("m1")
    assert h.messages() == [HistoryMessage("user", "Hi", "u1"),
                            HistoryMessage("assistant", "Hello there.", "m1")]


def test_an_interrupted_reply_keeps_only_the_spoken_words_and_the_mark() -> None:
    h = History("CA1")
    h.user_message("u1", "Can I book?")
    _spoken(h, "m1", ["I", "can", "book", "you", "on"])
    h.bot_interrupted("m1")
    h.bot_word("m1", "Tuesday", 5)  # late words after the cut were never heard
    h.bot_confirmed("m1", "I can book you on Tuesday at noon.")  # the full text, sometimes
    h.user_message("u2", "Wait")
    cut = h.messages()[1]
    assert cut == HistoryMessage("assistant", "I can book you on", "m1", interrupted=True)
    assert cut.content == "I can book you on" + INTERRUPTED_MARK
    assert h.to_openai()[1] == {"role": "assistant",
                                "content": "I can book you on— [interrupted by the caller]"}


def test_the_platforms_spoken_part_wins_when_it_is_no_longer_than_what_was_heard() -> None:
    h = History()
    _spoken(h, "m1", ["I", "can", "book"])
    h.bot_confirmed("m1", "I can book,")
    h.bot_interrupted("m1")
    assert h.messages()[0].text == "I can book,"


def test_words_spoken_bounds_a_full_confirmation_without_word_events() -> None:
    h = History()
    h.bot_speaking("m1", "Your room is ready on the third floor.")
    h.bot_interrupted("m1", words_spoken=3)
    h.bot_confirmed("m1", "Your room is ready on the third floor.")
    assert h.messages()[0].text == "Your room is"


def test_a_word_counts_as_heard_once_its_bot_word_was_sent() -> None:
    # The mid-word boundary: the caller barges in while word 3 plays. Its bot.word was
    # sent, so it was heard, even when the client learns of it only after the cut.
    h = History()
    h.bot_speaking("m1", "Your room is ready on the third floor.")
    _spoken(h, "m1", ["Your", "room"])
    h.bot_interrupted("m1", words_spoken=3)
    assert h.messages()[0].text == "Your room is"  # the reply's text gives the third word
    s = History()
    _spoken(s, "m1", ["Your", "room"])  # a stream: no text in advance
    s.bot_interrupted("m1", words_spoken=3)
    s.bot_word("m1", "is", 2)  # sent before the cut, arrived after it: heard
    s.bot_word("m1", "ready", 3)  # never sent before the cut: not heard
    assert s.messages()[0].text == "Your room is"
    assert s.messages()[0].content == "Your room is" + INTERRUPTED_MARK


def test_a_reply_cut_before_any_word_says_so() -> None:
    h = History()
    h.bot_speaking("m1")
    h.bot_interrupted("m1", words_spoken=0)
    assert h.messages()[0].content == "[interrupted by the caller before anything was said]"


def test_a_reply_the_app_cancelled_before_any_word_is_left_out() -> None:
    h = History()
    h.bot_speaking("m1")
    h.bot_interrupted("m1", words_spoken=0, by_caller=False)
    assert h.messages() == []


def test_duplicates_replace_in_place_and_unheard_replies_are_left_out() -> None:
    h = History()
    h.user_message("u1", "Hel")
    h.bot_speaking("m1")  # nothing heard yet
    h.user_message("u1", "Hello")
    h.bot_word("m1", "Hi", 0)
    h.bot_word("m1", "Hi", 0)  # re-sent word
    assert [(m.role, m.text) for m in h.messages()] == [("user", "Hello"), ("assistant", "Hi")]
    h2 = History()
    h2.bot_speaking("m2")
    assert h2.messages() == []


def test_a_bot_reply_with_known_text_and_no_word_events_counts_once_finished() -> None:
    h = History()
    h.bot_speaking("m1", "Welcome to the hotel.")
    assert h.messages() == []
    h.bot_finished("m1")
    assert h.messages()[0].text == "Welcome to the hotel."


def test_to_openai_puts_the_system_prompt_first_and_app_notes_as_system() -> None:
    h = History()
    h.user_message("u1", "Book Tuesday")
    h.add("tool", "book: confirmed #42")
    assert h.to_openai(system="Be brief.") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Book Tuesday"},
        {"role": "system", "content": "[tool] book: confirmed #42"}]


def test_to_anthropic_alternates_roles_and_starts_with_the_user() -> None:
    h = History()
    _spoken(h, "greet", ["Welcome!"])
    h.bot_finished("greet")
    h.user_message("u1", "Hi")
    h.user_message("u2", "Are you there?")
    h.add("tool", "lookup: 3 rooms")
    _spoken(h, "m1", ["Yes"])
    h.bot_interrupted("m1")
    h.add("assistant", "(noted)")
    assert h.to_anthropic() == [
        {"role": "user", "content": "[the call started]"},
        {"role": "assistant", "content": "Welcome!"},
        {"role": "user", "content": "Hi\n\nAre you there?\n\n[tool] lookup: 3 rooms"},
        {"role": "assistant", "content": "Yes" + INTERRUPTED_MARK + "\n\n(noted)"}]


def test_feeding_from_many_threads_loses_nothing() -> None:
    h = History()
    barrier = threading.Barrier(8)

    def feed(n: int) -> None:
        barrier.wait()
        for i in range(200):
            h.user_message(f"u{n}-{i}", f"{n}:{i}")
            if i % 50 == 0:
                h.to_openai()

    threads = [threading.Thread(target=feed, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(h.messages()) == 1600


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_stores_save_debounced_and_on_close(kind: str, tmp_path: Path) -> None:
    store = MemoryStore() if kind == "memory" else JSONFileStore(tmp_path)
    h = History("CA/../../etc/passwd", agent_id="desk", store=store)
    h.user_message("u1", "Hi")
    assert h.flush(timeout=5)
    saved = store.load("CA/../../etc/passwd")
    assert saved is not None and saved["status"] == "active"
    assert saved["transcript"] == [{"role": "user", "content": "Hi"}]
    _spoken(h, "m1", ["Hello"])
    h.bot_interrupted("m1")
    h.close(reason="hangup", contact="+15550001111")
    assert h.flush(timeout=5)
    saved = store.load("CA/../../etc/passwd")
    assert saved is not None and saved["status"] == "ended" and saved["reason"] == "hangup"
    assert saved["messages"][1] == {"role": "assistant", "text": "Hello", "message_id": "m1",
                                    "interrupted": True}
    assert store.find_by_contact("+15550001111") == [saved]
    assert store.find_by_contact("+1999") == []
    if isinstance(store, JSONFileStore):
        files = list(tmp_path.iterdir())
        assert len(files) == 1 and files[0].parent == tmp_path
        assert "/" not in files[0].name and ".." not in files[0].name
        assert json.loads(files[0].read_text())["call_id"] == "CA/../../etc/passwd"


def test_find_by_contact_returns_the_newest_first(tmp_path: Path) -> None:
    store = JSONFileStore(tmp_path)
    for n in range(3):
        store.save({"call_id": f"c{n}", "contact": "+1555", "ended_at": float(n)})
    store.save({"call_id": "other", "from": "+1666", "ended_at": 9.0})
    assert [r["call_id"] for r in store.find_by_contact("+1555", limit=2)] == ["c2", "c1"]
    assert [r["call_id"] for r in store.find_by_contact("+1666")] == ["other"]


def test_a_failing_store_never_reaches_the_feeder() -> None:
    class Broken(MemoryStore):
        def save(self, record: object) -> None:  # type: ignore[override]
            raise OSError("disk full")

    h = History("CA1", store=Broken())
    h.user_message("u1", "Hi")
    h.close()
    assert h.flush(timeout=5)
    assert h.messages()[0].text == "Hi"
