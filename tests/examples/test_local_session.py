"""voicesync.local: the mode switch, the scripted caller's steps, and what a session restores."""

from __future__ import annotations

import io
import os

import pytest

import voicesync
from voicesync.local import BargeIn, Press, Session, platform_key

LOCAL_ENV = ("PINECALL_API_KEY", "PINECALL_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL",
             "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in LOCAL_ENV:
        monkeypatch.delenv(name, raising=False)


def _echo() -> voicesync.Agent:
    agent = voicesync.Agent("echo", greeting="Hello.")
    agent.on("turn.end", lambda turn, call: call.reply("You said " + turn.text))
    return agent


def test_the_mode_follows_the_platform_key(monkeypatch: pytest.MonkeyPatch) -> None:
    assert platform_key() is None and Session().local is True
    monkeypatch.setenv("PINECALL_API_KEY", "pk_live_x")
    assert platform_key() == "pk_live_x" and Session().local is False


def test_a_session_points_providers_at_the_stand_in_and_restores_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-real")
    out = io.StringIO()
    with Session(out=out) as session:
        assert session.sim is not None and session.sim.model is not None
        assert os.environ["OPENAI_BASE_URL"] == session.sim.model.openai_base_url
        assert os.environ["OPENAI_API_KEY"]
        assert os.environ["ANTHROPIC_API_KEY"] == "sk-ant-real"  # a real provider stays
        assert "ANTHROPIC_BASE_URL" not in os.environ
        assert os.environ["PINECALL_URL"] == session.sim.url
        assert voicesync.Client().url == session.client.url  # a plain Client() reaches it
    assert out.getvalue().startswith("[no PINECALL_API_KEY: a local simulated call; "
                                     "no OPENAI_API_KEY: a stand-in model]")
    assert not {"OPENAI_API_KEY", "OPENAI_BASE_URL", "PINECALL_URL"} & set(os.environ)
    assert os.environ["ANTHROPIC_API_KEY"] == "sk-ant-real"


def test_a_forced_local_session_never_sends_the_platform_key(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINECALL_API_KEY", "pk_live_secret")
    with Session(local=True, out=io.StringIO()) as session:
        assert session.sim is not None
        connects = [f for f in session.sim.frames if f.event == "connect"]
        assert connects and all(f.get("api_key") != "pk_live_secret" for f in connects)
    assert os.environ["PINECALL_API_KEY"] == "pk_live_secret"


def test_play_prints_the_call_and_returns_the_transcript() -> None:
    out = io.StringIO()
    with Session(words_per_second=100, out=out) as session:
        transcript = session.play(_echo(), ["one", "two"])
    assert transcript == [("bot", "Hello.", False), ("user", "one", False),
                          ("bot", "You said one", False), ("user", "two", False),
                          ("bot", "You said two", False)]
    assert ("bot:    Hello.\ncaller: one\nbot:    You said one\ncaller: two\n"
            "bot:    You said two\n[call ended: hangup]\n") in out.getvalue()


def test_a_barge_in_cuts_the_reply_to_the_line_before() -> None:
    agent = voicesync.Agent("talker")
    agent.on("turn.end", lambda turn, call: call.reply(
        "one two three four five six seven eight nine ten eleven twelve" if turn.text == "count"
        else "ok"))
    with Session(words_per_second=20, out=io.StringIO()) as session:
        transcript = session.play(agent, ["count", BargeIn("stop", after_words=2)])
    cut = transcript[1]
    assert cut[0] == "bot" and cut[2] is True and cut[1].startswith("one two")
    assert transcript[2:] == [("user", "stop", False), ("bot", "ok", False)]


def test_a_barge_in_with_nothing_to_interrupt_says_why() -> None:
    with Session(words_per_second=100, timeout=2, out=io.StringIO()) as session, \
            pytest.raises(TimeoutError, match="nothing to barge in on"):
        session.play(_echo(), ["hi", BargeIn("stop", after_words=50)])


def test_press_waits_for_the_answer_and_callables_run_in_order() -> None:
    agent = voicesync.Agent("keys")
    agent.on("call.dtmf_received", lambda event, call: call.say("Pressed " + event.digit))
    seen: list[str] = []
    out = io.StringIO()
    with Session(words_per_second=100, out=out) as session:
        transcript = session.play(agent, [Press("5"), lambda: seen.append("after the answer")])
    assert transcript == [("bot", "Pressed 5", False)]
    assert seen == ["after the answer"]
    assert "caller: [pressed 5]\nbot:    Pressed 5\n" in out.getvalue()


def test_a_rejected_call_plays_nothing() -> None:
    agent = voicesync.Agent("picky", phone="+15550100009", ringing=True)
    agent.on("call.ringing", lambda ringing: ringing.reject("rejected"))
    out = io.StringIO()
    with Session(out=out) as session:
        assert session.play(agent, ["hello?"], to="+15550100009") == []
    assert "[call rejected: rejected]" in out.getvalue()
    assert "hello?" not in out.getvalue()


def test_an_agent_of_a_client_elsewhere_is_refused() -> None:
    stranger = voicesync.Client(api_key="k", url="ws://127.0.0.1:9").agent("stranger")
    with Session(out=io.StringIO()) as session, \
            pytest.raises(voicesync.ConfigurationError, match="belongs to a client for"):
        session.attach(stranger)


def test_scripted_calls_need_a_local_session() -> None:
    with pytest.raises(voicesync.ConfigurationError, match="local session"):
        Session(local=False).play(_echo(), ["hi"])
