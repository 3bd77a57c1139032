"""Running one scenario: its own simulator and client, the call, the checks, a `Result`.

Every run gets a fresh simulator (so the virtual clock, the frame record and the
stand-in model belong to it alone), a fresh client and a fresh agent: runs are
independent and can go in parallel threads. Blocks the calling thread.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicesync.client import Client
from voicesync.scenarios import _judge, _measure
from voicesync.scenarios._agents import hook, make_agent, wire_stand_in
from voicesync.scenarios._caller import Caller, Context, StepFailed
from voicesync.scenarios._jsonl import write_jsonl

if TYPE_CHECKING:
    from voicesync.scenarios._spec import Scenario


class ScenarioFailed(AssertionError):
    """A scenario's checks failed; the message lists every failure and the transcript."""


@dataclass
class Result:
    """What one run of a scenario showed. `ok` is True when `failures` is empty."""

    scenario: Scenario
    failures: list[str] = field(default_factory=list)
    transcript: list[tuple[str, str, bool]] = field(default_factory=list)
    heard: list[_measure.Spoken] = field(default_factory=list)
    frames: list[Any] = field(default_factory=list)
    outcome: str = "not started"
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    first_word: list[_measure.Timing] = field(default_factory=list)
    barge_in_silence: list[_measure.Timing] = field(default_factory=list)
    judge: str = ""
    seconds: float = 0.0
    call_id: str = ""

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def name(self) -> str:
        return self.scenario.name

    def text(self) -> str:
        """The conversation as "caller: ..." / "bot: ..." lines (a cut line ends with " [cut]")."""
        return "\n".join(f"{'caller' if who == 'user' else 'bot'}: {text}"
                         + (" [cut]" if cut else "") for who, text, cut in self.transcript)

    def report(self) -> str:
        head = f"{self.name}: {'ok' if self.ok else 'FAILED'} ({self.seconds * 1000:.0f} ms real"
        head += f", outcome {self.outcome}" + (f", judge {self.judge}" if self.judge else "") + ")"
        lines = [head, *(f"  - {failure}" for failure in self.failures)]
        if not self.ok and self.transcript:
            lines += ["  transcript:", *("    " + line for line in self.text().splitlines())]
        return "\n".join(lines)

    def check(self) -> Result:
        """Raise ScenarioFailed (an AssertionError) with the report unless it passed."""
        if not self.ok:
            raise ScenarioFailed(self.report())
        return self

    def save(self, path: str | Path) -> Path:
        """Record this run's frames as JSONL (see `voicesync.scenarios.record`)."""
        return write_jsonl(path, self.frames)


def run(scenario: Scenario) -> Result:
    """Run `scenario` to the end and check it. Never raises for a failing agent: see `ok`.

    Any thread; blocks until the call is over. Runs share nothing, so they may go in
    parallel threads.
    """
    from voicesync.sim import Simulator

    result = Result(scenario)
    tool_hooks: list[Callable[[], None]] = []
    started = time.monotonic()
    sim = Simulator(words_per_second=scenario.words_per_second,
                    virtual_time=scenario.virtual_time, model=bool(scenario.stand_in))
    client: Client | None = None
    try:
        sim.start()
        base = scenario.path.parent if scenario.path is not None else None
        agent, module = make_agent(scenario.agent, scenario.agent_args, base)
        if sim.model is not None:
            wire_stand_in(agent, sim)
            sim.model.responder = _Script(scenario.stand_in, tool_hooks)
        client = Client(api_key="voicesync-scenario", url=sim.url, ping_interval=5.0,
                        ping_timeout=30.0)
        client.add_agent(agent)
        client.connect(scenario.timeout)
        agent.wait_ready(scenario.timeout)
        _play(scenario, sim, agent, result, lambda ref: hook(module, ref, base),
              tool_hooks=tool_hooks)
    except StepFailed as exc:
        result.failures.append(str(exc))
    except Exception as exc:  # the agent or the setup broke: a failed run, with the reason
        result.failures.append(f"{type(exc).__name__}: {exc}")
    finally:
        if client is not None:
            client.close()
        sim.stop()
        result.seconds = time.monotonic() - started
    return result


def _play(scenario: Scenario, sim: Any, agent: Any, result: Result,
          resolve: Callable[[str], Callable[[Any], object]], *,
          tool_hooks: list[Callable[[], None]]) -> None:
    spec = scenario.call
    outbound = spec.get("direction") == "outbound"
    greeted = scenario.greeting if scenario.greeting is not None else (
        bool(spec.get("greeting")) if outbound else _has_greeting(agent))
    sim.clock.hold()  # nothing is spoken until a barge-in on the greeting is armed
    held = True

    def release() -> None:
        nonlocal held
        if held:
            held = False
            sim.clock.release()

    try:
        call = _place(scenario, sim, agent, outbound)
        result.call_id = call.call_id
        caller = Caller(sim, call, scenario.timeout,
                        Context(sim, call, agent, scenario), resolve, tool_hooks=tool_hooks)
        if call.status == "active":
            try:
                caller.play(scenario.steps, greeted=greeted, release=release)
            finally:
                result.outcome = _outcome(sim, call, caller.caller_hung_up)
        else:
            result.outcome = _outcome(sim, call, False)
    finally:
        release()
        if result.call_id:
            _finish(sim, sim.call(result.call_id), scenario, result)


def _place(scenario: Scenario, sim: Any, agent: Any, outbound: bool) -> Any:
    spec = scenario.call
    timeout = scenario.timeout
    if outbound:
        to = str(spec["to"])
        errors: list[BaseException] = []

        def dial() -> None:
            try:
                agent.dial(to, greeting=spec.get("greeting"), metadata=spec.get("metadata"),
                           timeout=timeout)
            except Exception as exc:
                errors.append(exc)

        thread = threading.Thread(target=dial, name="voicesync-scenario-dial", daemon=True)
        sim.clock.release()  # dialing takes the clock (the callee picks up after dial_delay)
        try:
            thread.start()
            return sim.wait_call(to=to, direction="outbound", timeout=timeout)
        except TimeoutError:
            thread.join(timeout)
            raise StepFailed(f"the agent did not dial {to}: {errors or 'no call.dial'}") from None
        finally:
            sim.clock.hold()
    from voicesync.local import _wait_phones

    _wait_phones(sim, agent, timeout)
    call = sim.ring(agent.id, str(spec.get("from", "+15550001111")), spec.get("to"),
                    metadata=spec.get("metadata"), timeout=timeout)
    sim.clock.release()  # a ringing call may need the clock (auto-accept)
    try:
        call.wait_started(timeout + sim.ring_timeout)
    finally:
        sim.clock.hold()
    return call


def _finish(sim: Any, call: Any, scenario: Scenario, result: Result) -> None:
    """Hang up what is left, then read the record back and check it."""
    if call.status in ("active", "ringing"):
        call.hangup("scenario_end")
    # Frames are recorded as their writer sends them: once the call's last frame is in
    # the record, so is everything before it.
    last = "call.rejected" if call.status == "rejected" else "call.ended"
    with contextlib.suppress(TimeoutError):
        sim.wait_frame(event=last, call_id=call.call_id, direction="out",
                       timeout=scenario.timeout)
    result.transcript = call.transcript
    result.frames = [f for f in sim.frames if f.call_id in (None, call.call_id)]
    frames = [f for f in result.frames if f.call_id == call.call_id]
    result.heard = _measure.heard(frames)
    result.first_word = _measure.first_word_latencies(frames)
    result.barge_in_silence = _measure.barge_in_silences(frames)
    if sim.model is not None:
        result.tool_calls = _tool_calls(sim.model.requests)
    _check(scenario, call, result)


def _check(scenario: Scenario, call: Any, result: Result) -> None:
    expect, fail = scenario.expect, result.failures.append
    said = " ".join(msg.text for msg in result.heard)
    norm = " ".join(said.lower().split())
    pos = 0
    for text in expect.heard:
        found = norm.find(" ".join(text.lower().split()), pos)
        if found < 0:
            fail(f'expected to hear "{text}"' + (" (in this order)" if pos else "")
                 + f'; the caller heard "{said}"')
        else:
            pos = found + len(text)
    for text in expect.not_heard:
        if " ".join(text.lower().split()) in norm:
            fail(f'the caller heard "{text}", which must not be said')
    if expect.outcome is not None and result.outcome != expect.outcome:
        fail(f"expected outcome {expect.outcome}, got {result.outcome}")
    if expect.transferred_to is not None:
        sent = [f.get("to") for f in result.frames if f.event == "call.forward"]
        if expect.transferred_to not in sent:
            fail(f"expected a transfer to {expect.transferred_to}, got {sent or 'none'}")
    if expect.digits is not None and call._core.digits != expect.digits:
        fail(f"expected the caller's digits {expect.digits!r}, got {call._core.digits!r}")
    _check_history(expect.history, call.history, fail)
    _check_tools(expect.tool_calls, result.tool_calls, fail)
    _check_budget(expect.first_word_ms, result.first_word, fail)
    barge_budget = expect.barge_in_silent_ms
    if barge_budget is None and result.barge_in_silence:
        barge_budget = DEFAULT_BARGE_IN_SILENT_MS
    _check_budget(barge_budget, result.barge_in_silence, fail)
    if expect.judge:
        result.judge = _judge.judge_name()
        for rubric in expect.judge:
            verdict = _judge.judge(rubric, result.text())
            if not verdict.passed:
                fail(f'judge ({result.judge}) failed "{rubric}": {verdict.why}')


DEFAULT_BARGE_IN_SILENT_MS = 300.0  # checked on every barge-in unless the scenario sets one


def _check_budget(budget: float | None, timings: list[_measure.Timing],
                  fail: Callable[[str], None]) -> None:
    if budget is None:
        return
    for timing in timings:
        if timing.ms > budget:
            past = f'; the caller heard after it: "{timing.after}"' if timing.after else ""
            fail(f"{timing.what}: {timing.ms:.0f} ms, over the {budget:g} ms budget{past}")


def _check_history(wanted: list[dict[str, str]], history: list[dict[str, Any]],
                   fail: Callable[[str], None]) -> None:
    for item in wanted:
        role, text = item.get("role"), str(item.get("contains", "")).lower()
        if not any((role is None or m.get("role") == role)
                   and text in str(m.get("content", "")).lower() for m in history):
            fail(f"no {role or 'history'} message containing {text!r} in the history "
                 f"{[(m.get('role'), m.get('content')) for m in history]}")


def _check_tools(wanted: list[dict[str, Any]], made: list[dict[str, Any]],
                 fail: Callable[[str], None]) -> None:
    for item in wanted:
        name, args = item.get("name"), dict(item.get("args") or {})
        if not any(c["name"] == name and all(c["args"].get(k) == v for k, v in args.items())
                   for c in made):
            fail(f"expected a tool call {name}({args}), the model made {made or 'none'}")


def _tool_calls(requests: list[Any]) -> list[dict[str, Any]]:
    """The tool calls the stand-in model made, as the agent received them."""
    calls = []
    for request in requests:
        for tool in getattr(request.reply, "tool_calls", None) or ():
            args = tool.arguments
            calls.append({"name": tool.name,
                          "args": json.loads(args) if isinstance(args, str) else dict(args)})
    return calls


def _outcome(sim: Any, call: Any, caller_hung_up: bool) -> str:
    reason = call.ended_reason
    if call.status == "active":
        return "active"
    if call.status == "rejected":
        return "rejected"
    if reason == "forwarded":
        return "transferred"
    if reason == "hangup":
        return "caller_hangup" if caller_hung_up else "agent_hangup"
    return str(reason or call.status)


class _Script:
    """The stand-in model's replies, in order; a request that follows a reply with tool
    calls (the agent ran them and asks the model to go on) first fires `tool_hooks`."""

    def __init__(self, replies: list[Any], tool_hooks: list[Callable[[], None]]) -> None:
        self._replies = [_reply(r) for r in replies]
        self._hooks = tool_hooks
        self._after_tools = False
        self._lock = threading.Lock()

    def __call__(self, request: Any) -> Any:
        from voicesync.sim.model import default_reply

        with self._lock:
            after_tools = self._after_tools
            reply = self._replies.pop(0) if self._replies else default_reply(request)
            self._after_tools = bool(getattr(reply, "tool_calls", ()))
        if after_tools:
            for hook in list(self._hooks):
                hook()
        return reply


def _reply(raw: Any) -> Any:
    """A stand-in model reply from a scenario: a string, or {text, tool_calls}."""
    from voicesync.sim.model import Reply, ToolCall

    if isinstance(raw, (str, Reply)):
        return raw
    tools = tuple(ToolCall(str(t["name"]), dict(t.get("args") or {}))
                  for t in raw.get("tool_calls") or ())
    return Reply(str(raw.get("text", "")), tool_calls=tools)


def _has_greeting(agent: Any) -> bool:
    return bool(agent.config.get("greeting")) or callable(type(agent).greeting)
