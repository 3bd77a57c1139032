"""The REST surface over loopback: tokens (scope, call id, several agents), voices, phone
numbers, balance and knowledge bases, with typed results and typed errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from helpers import CANARY_KEY, until

import voicesync
from voicesync.rest import (
    Balance,
    KnowledgeHit,
    NotFoundError,
    PhoneNumber,
    Rest,
    RestError,
    Token,
    UpgradeRequiredError,
)
from voicesync.sim import KnowledgeServer


@pytest.fixture
def kb_server() -> Iterator[KnowledgeServer]:
    with KnowledgeServer(api_key=CANARY_KEY) as server:
        yield server


def _connected(client: voicesync.Client, *ids: str) -> list[voicesync.Agent]:
    agents = [client.agent(i) for i in ids]
    client.connect(timeout=5)
    for agent in agents:
        agent.wait_ready(5)
    return agents


def test_tokens_carry_scope_call_id_and_several_agents(sim: Any,
                                                       client: voicesync.Client) -> None:
    support, _ = _connected(client, "support", "sales")
    token = client.create_token("stream", ["support", "sales"], scope="observe")
    assert isinstance(token, Token) and token.token.startswith("stream_")
    assert token.server == sim.http_url and token.expires_in == 60
    grant = sim._platform.tokens[token.token]
    assert (grant.agents, grant.scope, grant.channel) == (("support", "sales"), "observe",
                                                          "stream")

    simcall = sim.start_call("support")
    until(lambda: support.call(simcall.call_id), 5, "the SDK call")
    narrow = support.create_token("stream", scope="supervise", call_id=simcall.call_id)
    assert sim._platform.tokens[narrow].call_id == simcall.call_id

    with pytest.raises(NotFoundError, match="not a call of"):
        client.create_token("stream", "sales", call_id=simcall.call_id)
    with pytest.raises(RestError, match="one agent") as info:
        client.rest.create_token("webrtc", ["support", "sales"])
    assert info.value.status == 400
    with pytest.raises(RestError, match="scope must be"):
        client.rest.create_token("stream", "support", scope="admin")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError, match="not connected"):
        client.rest.create_token("chat", "nobody")


def test_voices_phone_numbers_and_balance_are_typed(sim: Any, client: voicesync.Client) -> None:
    _connected(client, "support")
    client.agents["support"].add_phone("+15550100001")
    rest = client.rest  # works without a connection too; this one just has an agent
    spanish = rest.voices(language="es")
    assert [v.alias for v in spanish] == ["valentina"]
    assert spanish[0].provider == "elevenlabs" and spanish[0].languages[0].code == "es"
    assert {v.name for v in rest.voices("polly")} == {"Lucia", "Matthew"}

    def claimed() -> list[PhoneNumber]:
        return [p for p in rest.phone_numbers() if p.is_sdk]

    phones = until(claimed, 5, "the claimed number")
    assert [p.number for p in phones] == ["+15550100001"] and phones[0].sid.startswith("PN")
    assert rest.balance() == Balance("25.00", "USD")


def test_a_refused_key_and_an_unreachable_host_are_typed(sim: Any) -> None:
    sim.api_key = CANARY_KEY
    wrong = Rest("pk_wrong", sim.http_url)
    with pytest.raises(voicesync.AuthenticationError):
        wrong.phone_numbers()
    with pytest.raises(voicesync.ConnectError):
        Rest(CANARY_KEY, "http://127.0.0.1:9", timeout=2).balance()
    with pytest.raises(voicesync.ConfigurationError, match="unencrypted"):
        Rest(CANARY_KEY, "http://voice.example.com")


def test_knowledge_bases_round_trip(sim: Any, kb_server: KnowledgeServer) -> None:
    rest = Rest(CANARY_KEY, sim.http_url, knowledge_url=kb_server.url)
    kb = rest.create_knowledge_base("Hotel", "Front desk facts")
    assert (kb.name, kb.description, kb.doc_count, kb.status) == ("Hotel", "Front desk facts",
                                                                 0, "ready")
    doc = rest.push_doc(kb.id, "faq/checkin.md", "Check-in is at 3 pm.\n\nBreakfast is at 7 am.",
                        title="Check-in")
    again = rest.push_doc(kb.id, "faq/checkin.md", "Check-in is at 2 pm.\n\nPets are welcome.")
    assert again.id == doc.id and doc.text is None  # the path is the identity
    rest.push_doc(kb.id, "faq/parking.md", "Parking costs 10 dollars a day.")
    base, docs = rest.knowledge_base(kb.id)
    assert base.doc_count == 2 and sorted(d.path for d in docs) == ["faq/checkin.md",
                                                                     "faq/parking.md"]
    assert rest.knowledge_doc(kb.id, doc.id).text == "Check-in is at 2 pm.\n\nPets are welcome."
    hits = rest.query_knowledge(kb.id, "when is check-in", k=1)
    assert hits == [KnowledgeHit(0.75, "Check-in is at 2 pm.", None, "faq/checkin.md",
                                 "faq/checkin.md")]
    rest.reindex_knowledge_base(kb.id)
    assert kb_server.reindexed == [kb.id]
    rest.delete_doc(kb.id, doc.id)
    with pytest.raises(NotFoundError):
        rest.knowledge_doc(kb.id, doc.id)
    assert [k.id for k in rest.knowledge_bases()] == [kb.id]
    rest.delete_knowledge_base(kb.id)
    assert rest.knowledge_bases() == []
    with pytest.raises(NotFoundError):
        rest.knowledge_base(kb.id)


def test_knowledge_bases_on_a_plan_without_them(sim: Any) -> None:
    with KnowledgeServer(api_key=CANARY_KEY, paid=False) as unpaid:
        rest = Rest(CANARY_KEY, sim.http_url, knowledge_url=unpaid.url)
        with pytest.raises(UpgradeRequiredError, match="upgrade") as info:
            rest.knowledge_bases()
        assert info.value.status == 402
        with pytest.raises(voicesync.AuthenticationError):
            Rest("pk_wrong", sim.http_url, knowledge_url=unpaid.url).knowledge_bases()
