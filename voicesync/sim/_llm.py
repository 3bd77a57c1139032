"""Server-side LLM agents (docs/protocol.md §5.7, §5.8, §9.4): a scripted model and its turn driver.

A turn runs as a small state machine on the simulator lock and the scaled clock:
`llm.before` -> (`llm.ready` | budget) -> reply, or `llm.tool_call` -> (`llm.tool_result`
| timeout) -> reply. No thread per call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from voicesync.sim._clock import Timer
from voicesync.sim._util import JsonDict, new_id

if TYPE_CHECKING:
    from voicesync.sim._call import CallCore

_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


@dataclass(frozen=True)
class ToolRequest:
    """What the scripted model does instead of answering: call one declared tool.

    `reply` is the follow-up spoken once the result arrives; `{name}` and `{result}`
    (the result as JSON, or as-is when it is a string) are filled in.
    """

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    reply: str = "The {name} tool says {result}."


@dataclass(frozen=True)
class LLMTurn:
    """What a responder sees: the turn's text, the agent, its declared tools, the history."""

    agent_id: str
    call_id: str
    turn: int
    text: str
    tools: tuple[str, ...]
    history: tuple[JsonDict, ...]


Responder = Callable[[LLMTurn], "str | ToolRequest | None"]


class ScriptedLLM:
    """The simulator's stand-in for a server-side model.

    Order: `responder` if set; else the first `script` key found (case-insensitively) in
    the user's text; else a declared tool whose name appears in the text (arguments from a
    JSON object in the text); else an echo.
    """

    def __init__(self) -> None:
        self.script: dict[str, str | ToolRequest] = {}
        self.responder: Responder | None = None
        self.echo_prefix = "You said: "

    def respond(self, turn: LLMTurn) -> str | ToolRequest | None:
        if self.responder is not None:
            return self.responder(turn)
        lowered = turn.text.lower()
        for key, answer in self.script.items():
            if key.lower() in lowered:
                return answer
        for name in turn.tools:
            if name.lower() in lowered:
                return ToolRequest(name, _arguments_in(turn.text))
        text = turn.text.strip()
        return f"{self.echo_prefix}{text}" + ("" if text.endswith((".", "!", "?")) else ".")


def _arguments_in(text: str) -> dict[str, Any]:
    found = _JSON_OBJECT.search(text)
    if found is None:
        return {}
    try:
        value = json.loads(found.group(0))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _names(tools: Any) -> list[str]:
    """Names of declared tools (OpenAI shape or plain {name})."""
    names: list[str] = []
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, dict):
            continue
        fn = tool.get("function")
        name = fn.get("name") if isinstance(fn, dict) else tool.get("name")
        if isinstance(name, str):
            names.append(name)
    return names


def skill_of_tool(config: Mapping[str, Any]) -> dict[str, str]:
    """Tool name -> the declared skill that must be loaded to call it (§3.5); the tools
    of an ``always`` skill need no loading."""
    skills = config.get("skills")
    return {tool: skill["name"] for skill in (skills if isinstance(skills, list) else [])
            if isinstance(skill, dict) and isinstance(skill.get("name"), str)
            and skill.get("activation") != "always" for tool in _names(skill.get("tools"))}


def tool_names(config: Mapping[str, Any], active: frozenset[str] = frozenset()
               ) -> tuple[str, ...]:
    """The tools the model may call: the agent's, and those of its skills that are active
    or that the model may load itself (activation ``model``, the default, or ``always``)."""
    names = _names(config.get("tools"))
    skills = config.get("skills")
    for skill in skills if isinstance(skills, list) else []:
        if isinstance(skill, dict) and (skill.get("activation") != "manual"
                                        or skill.get("name") in active):
            names += _names(skill.get("tools"))
    return tuple(names)


def preparing_budget(config: Mapping[str, Any]) -> tuple[float | None, bool]:
    """(budget in seconds or None when never signalled, whether the agent opted in)."""
    prep = config.get("preparing")
    if prep is False:
        return None, False
    if prep is None:
        return 0.150, False
    if isinstance(prep, dict):
        if prep.get("enabled") is False:
            return None, False
        ms = prep.get("timeout_ms", 1500)
        ms = ms if isinstance(ms, int | float) and not isinstance(ms, bool) else 1500
        return min(max(float(ms), 0.0), 5000.0) / 1000.0, True
    return 1.5, True


class ServerTurn:
    """One server-LLM turn of a call. Every method runs with the simulator lock held."""

    def __init__(self, call: CallCore, turn: int, text: str) -> None:
        self.call = call
        self.turn = turn
        self.text = text
        self.stage = "new"
        self.msg_id = ""
        self._request: ToolRequest | None = None
        self._timer: Timer | None = None
        self._waited_from = 0.0

    def start(self) -> None:
        budget, opted_in = preparing_budget(self.call.agent_config)
        if budget is None:
            self._generate()
            return
        self.stage = "before"
        self.call.emit("llm.before", turn=self.turn)
        self._later(budget, lambda: self._missed_budget(budget, opted_in))

    def cancel(self) -> None:
        self.stage = "done"
        self._stop_timer()

    def on_ready(self, frame: JsonDict) -> None:
        turn = frame.get("turn")
        if self.stage == "before" and (turn is None or turn == self.turn):
            self._stop_timer()
            self._generate()

    def on_tool_result(self, frame: JsonDict) -> bool:
        if self.stage != "tool" or frame.get("msg_id") != self.msg_id:
            return False
        self._stop_timer()
        results = frame.get("results")
        results = [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []
        for r in results:
            self.call.history.append({"role": "tool", "tool_call_id": r.get("tool_call_id"),
                                      "content": _as_text(r.get("result"))})
        self.stage = "done"
        if results and all(r.get("no_followup") is True for r in results):
            return True
        request = self._request
        assert request is not None
        result = results[0].get("result") if results else None
        self.call.speak_server(request.reply.format(name=request.name, result=_as_text(result)))
        return True

    def _generate(self) -> None:
        call = self.call
        answer = call.llm.respond(LLMTurn(
            call.agent_slug, call.call_id, self.turn, self.text,
            tool_names(call.agent_config, frozenset(call.skills)), tuple(call.history)))
        if isinstance(answer, ToolRequest):
            skill = skill_of_tool(call.agent_config).get(answer.name)
            if skill is not None and skill not in call.skills:  # the model loads it first
                call.skills.add(skill)
                call.emit("skill.loaded", skill=skill, by="model")
            self._request = answer
            self.msg_id = new_id("msg_")
            tool_call = {"id": new_id("call_"), "name": answer.name,
                         "arguments": json.dumps(dict(answer.arguments))}
            call.history.append({"role": "assistant", "content": "", "tool_calls": [
                {"id": tool_call["id"], "type": "function",
                 "function": {"name": answer.name, "arguments": tool_call["arguments"]}}]})
            self.stage = "tool"
            call.emit("llm.tool_call", msg_id=self.msg_id, tool_calls=[tool_call])
            self._later(call.settings.tool_timeout, self._tool_timed_out)
            return
        self.stage = "done"
        if answer:
            call.speak_server(answer)

    def _missed_budget(self, budget: float, opted_in: bool) -> None:
        if self.stage != "before":
            return
        if opted_in:
            waited = self.call.clock.sim_elapsed(self._waited_from)
            self.call.emit("llm.preparing_timeout", turn=self.turn,
                           waited_ms=int(waited * 1000), budget_ms=int(budget * 1000))
        self._generate()

    def _tool_timed_out(self) -> None:
        if self.stage == "tool":
            self.stage = "done"
            self.call.speak_server("Sorry, I could not get that information in time.")

    def _later(self, sim_seconds: float, fn: Callable[[], None]) -> None:
        lock = self.call.lock
        self._waited_from = self.call.clock.now()
        timer: Timer | None = None

        def fire() -> None:
            with lock:
                if timer is not None and not timer.cancelled and self._timer is timer:
                    self._timer = None
                    fn()

        timer = self._timer = self.call.clock.after_sim(sim_seconds, fire)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
