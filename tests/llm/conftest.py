"""Fixtures for the llm tests: the stand-in model and the real provider clients pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest
from llm_helpers import RecordingStream

from voicesync.sim.model import ModelServer


@pytest.fixture
def model() -> Iterator[ModelServer]:
    with ModelServer(tokens_per_second=200.0) as server:
        yield server


@pytest.fixture
def openai_client(model: ModelServer) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=model.openai_base_url, api_key="sk-test-dummy",
                           max_retries=0)
    yield client
    client.close()


@pytest.fixture
def anthropic_client(model: ModelServer) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(base_url=model.anthropic_base_url, api_key="sk-test-dummy",
                                 max_retries=0)
    yield client
    client.close()


@pytest.fixture
def stream() -> RecordingStream:
    return RecordingStream()
