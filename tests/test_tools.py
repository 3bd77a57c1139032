"""@voicesync.tool: schemas from hints and docstrings, the provider shapes, running, binding."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any, Literal, Optional, TypedDict

import pytest

from voicesync.tools import Tool, run_tool_calls, tool


@tool
def open_door(code: str, door: Literal["A", "B"]) -> str:
    """Open the door

    Args:
        code: 5-digit access code
        door: which door
    """
    return f"opened {door} with {code}"


def test_the_wire_shape_is_the_protocols() -> None:
    # docs/protocol.md §3.5, byte for byte apart from the enum's description.
    assert open_door.to_wire() == {"type": "function", "function": {
        "name": "open_door", "description": "Open the door", "parameters": {
            "type": "object",
            "properties": {"code": {"type": "string", "description": "5-digit access code"},
                           "door": {"type": "string", "enum": ["A", "B"],
                                    "description": "which door"}},
            "required": ["code", "door"]}}}
    assert open_door.to_openai() == open_door.to_wire()
    assert open_door.to_openai_responses() == {
        "type": "function", "name": "open_door", "description": "Open the door",
        "parameters": open_door.parameters}
    assert open_door.to_anthropic() == {"name": "open_door", "description": "Open the door",
                                        "input_schema": open_door.parameters}


class Address(TypedDict, total=False):
    street: str
    zip: str


@dataclasses.dataclass
class Guest:
    name: str
    nights: int = 1


def test_types_map_to_json_schema() -> None:
    @tool(name="book", description="Book a room.")
    def book(guest: Guest, count: int, *, price: float, late: bool, tags: list[str],
             note: Optional[str], floor: int | None = None, smoking: bool = False,  # noqa: UP045
             address: Address | None = None, mood: Literal["calm"] = "calm",
             extra: Annotated[str, "anything else"] = "") -> None:
        """Not used: description= wins.

        Args:
            count: how many rooms
                (continued on a second line)
        """

    props = book.parameters["properties"]
    assert book.name == "book" and book.description == "Book a room."
    assert props["guest"] == {"type": "object", "properties": {
        "name": {"type": "string"}, "nights": {"type": "integer"}}, "required": ["name"]}
    assert props["count"] == {"type": "integer",
                              "description": "how many rooms (continued on a second line)"}
    assert props["price"] == {"type": "number"}
    assert props["late"] == {"type": "boolean"}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["note"] == {"type": "string"}
    assert props["floor"] == {"type": "integer", "default": None}
    assert props["smoking"] == {"type": "boolean", "default": False}
    assert props["address"] == {"type": "object", "properties": {
        "street": {"type": "string"}, "zip": {"type": "string"}}, "default": None}
    assert props["mood"] == {"type": "string", "const": "calm", "default": "calm"}
    assert props["extra"] == {"type": "string", "description": "anything else", "default": ""}
    assert book.parameters["required"] == ["guest", "count", "price", "late", "tags"]


def test_no_parameters_means_no_required_list() -> None:
    @tool
    def now() -> str:
        """The time."""
        return "noon"

    assert now.parameters == {"type": "object", "properties": {}}
    assert now.run("") == "noon" and now.run(None) == "noon" and now.run({}) == "noon"


def test_run_parses_json_and_converts_what_json_cannot_say() -> None:
    seen: list[Any] = []

    @tool
    def stay(guest: Guest, nights: int) -> str:
        """Record a stay."""
        seen.append((guest, nights))
        return "ok"

    assert stay.run('{"guest": {"name": "Ada", "nights": 2}, "nights": 3.0}') == "ok"
    assert seen == [(Guest("Ada", 2), 3)] and isinstance(seen[0][1], int)
    assert open_door.run({"code": "12345", "door": "B"}) == "opened B with 12345"
    assert open_door("1", "A") == "opened A with 1"  # still a plain function


def test_run_raises_on_bad_arguments_and_tool_errors() -> None:
    with pytest.raises(ValueError):
        open_door.run("[1, 2]")
    with pytest.raises(json.JSONDecodeError):
        open_door.run("{not json")
    with pytest.raises(TypeError):
        open_door.run({"code": "1"})


def test_a_method_tool_binds_to_its_instance() -> None:
    class Desk:
        def __init__(self, hotel: str) -> None:
            self.hotel = hotel

        @tool
        def rooms(self, day: str) -> str:
            """Free rooms on a day.

            Args:
                day: the day
            """
            return f"{self.hotel}: 3 rooms on {day}"

    assert isinstance(Desk.rooms, Tool)
    assert list(Desk.rooms.parameters["properties"]) == ["day"]
    bound = Desk("Ritz").rooms
    assert bound.run('{"day": "Monday"}') == "Ritz: 3 rooms on Monday"
    assert bound.to_wire() == Desk.rooms.to_wire()
    assert Desk("Savoy").rooms("Friday") == "Savoy: 3 rooms on Friday"


def test_an_unsupported_type_is_named() -> None:
    with pytest.raises(TypeError, match="complex"):
        @tool
        def bad(x: complex) -> None:
            """Bad."""


def test_run_tool_calls_turns_failures_into_error_results() -> None:
    @tool
    def fails() -> None:
        """Fails."""
        raise RuntimeError("no rooms")

    results = run_tool_calls([open_door, fails], [
        ("c1", "open_door", '{"code": "9", "door": "A"}'), ("c2", "fails", None),
        ("c3", "missing", "{}")])
    assert [(r.call_id, r.result, r.error) for r in results] == [
        ("c1", "opened A with 9", False), ("c2", {"error": "no rooms"}, True),
        ("c3", {"error": "Unknown tool: missing"}, True)]
    assert results[1].text == '{"error": "no rooms"}'
