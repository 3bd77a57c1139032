"""Standalone speech and transcription, agents' memory and model access over loopback HTTP,
with typed results and typed errors (the simulator and `KnowledgeServer` serve them)."""

from __future__ import annotations

import io
import threading
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import CANARY_KEY, until

import voicesync
from voicesync.rest import (
    FinalTranscript,
    MemoryContact,
    MemoryHit,
    ModelAccess,
    PartialTranscript,
    Rest,
    RestError,
    Speech,
    Transcription,
    TranscriptionDone,
    TranscriptWord,
)
from voicesync.sim import KnowledgeServer


@pytest.fixture
def rest(sim: Any) -> Iterator[Rest]:
    sim.api_key = CANARY_KEY
    with KnowledgeServer(api_key=CANARY_KEY) as server:
        yield Rest(CANARY_KEY, sim.http_url, knowledge_url=server.url, audio_url=server.url)


def test_speech_is_a_wav_sized_by_the_text_and_transcribes_back(rest: Rest,
                                                                 tmp_path: Path) -> None:
    speech = rest.audio.speech("Your table is ready.", "elevenlabs/sarah", language="en")
    assert isinstance(speech, Speech)
    assert (speech.format, speech.sample_rate, speech.characters) == ("wav", 16000, 20)
    assert speech.audio_ms == 1000 and speech.request_id.startswith("tts_")
    with wave.open(io.BytesIO(speech.audio)) as wav:  # a valid WAV, 16-bit mono
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 16000)
        assert wav.getnframes() == 16000

    pcm = rest.audio.speech("Hi", "elevenlabs/sarah", format="pcm", sample_rate=24000)
    assert (pcm.format, pcm.sample_rate, len(pcm.audio)) == ("pcm", 24000, 24000 * 2 // 10)

    text = rest.audio.transcribe(speech.audio)
    assert isinstance(text, Transcription)
    assert (text.text, text.language, text.duration) == ("Your table is ready.", "en", 1.0)
    assert text.words == () and text.request_id.startswith("stt_")

    path = tmp_path / "reply.wav"
    path.write_bytes(speech.audio)
    detailed = rest.audio.transcribe(path, language="es", diarize=True, detailed=True)
    assert detailed.language == "es" and detailed.model == "elevenlabs/scribe_v1"
    assert detailed.words[0] == TranscriptWord("Your", 0.0, 0.25, "0")
    assert [s.text for s in detailed.segments] == ["Your table is ready."]


def test_audio_refusals_are_typed(rest: Rest, sim: Any) -> None:
    with pytest.raises(RestError, match="unknown voice") as info:
        rest.audio.speech("Hello", "sarah")
    assert info.value.status == 400
    with pytest.raises(RestError, match="pcm or wav"):
        rest.audio.speech("Hello", "elevenlabs/sarah", format="mp3")
    with pytest.raises(ValueError, match=r"1\.\.5000"):
        rest.audio.speech("", "elevenlabs/sarah")
    with KnowledgeServer(api_key=CANARY_KEY) as server:
        wrong = Rest("pk_wrong", sim.http_url, audio_url=server.url)
        with pytest.raises(voicesync.AuthenticationError):
            wrong.audio.transcribe(b"RIFF")


def test_memory_search_get_and_forget(rest: Rest, sim: Any) -> None:
    sim.memory.remember("support", "+15550100001", "Prefers a window table", call_id="c_1")
    sim.memory.remember("support", "+15550100001", "Allergic to peanuts", kind="health")
    sim.memory.remember("support", "+15550100002", "Wants a window seat on trains")
    memory = rest.memory("support")

    hits = memory.search("window table")
    assert hits == [MemoryHit("+15550100001", "fact", "Prefers a window table", 1.0),
                    MemoryHit("+15550100002", "fact", "Wants a window seat on trains", 0.5)]
    assert [h.contact for h in memory.search("window", contact="+15550100002")] == [
        "+15550100002"]

    known = memory.get("+15550100001")
    assert isinstance(known, MemoryContact) and known.revision == 2
    assert [(f.kind, f.text, f.call_id) for f in known.facts] == [
        ("fact", "Prefers a window table", "c_1"), ("health", "Allergic to peanuts", None)]
    assert "Allergic to peanuts" in known.memory_md

    assert memory.forget("+15550100001") is True
    assert memory.forget("+15550100001") is False
    assert memory.get("+15550100001").facts == ()
    assert rest.memory("sales").search("window") == []
    with pytest.raises(voicesync.AuthenticationError):
        Rest("pk_wrong", sim.http_url).memory("support").get("+15550100002")


def test_model_access_and_catalog(rest: Rest) -> None:
    managed = rest.models.access("llm", "openai/gpt-4.1-mini")
    assert isinstance(managed, ModelAccess)
    assert (managed.allowed, managed.reason, managed.managed, managed.provider) == (
        True, "ok", True, "openai")
    byok = rest.models.access("llm", "anthropic/claude-sonnet-4")
    assert (byok.allowed, byok.reason, byok.requires_key) == (False, "byok_key_required", True)
    assert rest.models.access("stt", "soniox/stt-rt-v5").reason == "plan_restricted"
    assert rest.models.access("tts", "nobody/nothing").exists is False
    assert rest.models.allowed("stt", "deepgram/nova-3") is True
    catalog = rest.models.catalog()
    assert len(catalog) == 5 and {m.service for m in catalog} == {"llm", "tts", "stt"}


def test_live_transcription_over_its_own_socket(sim: Any) -> None:
    sim.api_key = CANARY_KEY
    rest = Rest(CANARY_KEY, sim.http_url)  # the live socket is on the simulator's port
    with rest.audio.transcribe_stream(language="es", diarize=True) as live:
        assert live.request_id.startswith("stt_") and live.sample_rate == 16000
        live.write(bytes(16000))  # 0.5 s of 16 kHz 16-bit mono
        live.finalize()
        live.write(bytes(32000))
        done = live.end()
        items = list(live)
    assert done == TranscriptionDone(1.5, 0.025)
    assert items[0] == PartialTranscript("[0.50 s of audio]")
    finals = [(i.text, i.start, i.end, i.language, i.speaker) for i in items
              if isinstance(i, FinalTranscript)]
    assert finals == [("[0.50 s of audio]", 0.0, 0.5, "es", "0"),
                      ("[1.00 s of audio]", 0.5, 1.5, "es", "0")]
    with pytest.raises(RestError, match="ended"):
        live.write(b"late")
    until(lambda: not any(t.name == "voicesync-stt-reader" for t in threading.enumerate()),
          5, "the stream's reader to end")

    with pytest.raises(voicesync.AuthenticationError):
        Rest("pk_wrong", sim.http_url).audio.transcribe_stream()
    with pytest.raises(RestError, match="BAD_ARGS"):
        rest.audio.transcribe_stream(sample_rate=11025)  # type: ignore[arg-type]
    with rest.audio.transcribe_stream() as dropped:  # closed without end(): no error
        dropped.write(bytes(3200))
    assert all(isinstance(i, PartialTranscript) for i in list(dropped))
    with pytest.raises(RestError, match="ended"):
        dropped.write(b"late")
