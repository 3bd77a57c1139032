"""`@voicesync.tool`: a function (or method) the LLM may call, with its JSON schema.

The schema comes from the type hints and the Google-style docstring (`Args:` section). The
wire shape is docs/protocol.md §3.5 (OpenAI function calling); `to_openai_responses()` and
`to_anthropic()` give the other providers' shapes. Ints are ``"integer"``, a JSON-schema type
every provider accepts.

A parameter named ``call`` or annotated ``Call`` is not the model's: it receives the live
`voicesync.Call` the tool runs for and stays out of the schema. `run_tool_calls` runs one
model turn's tool calls concurrently, each under a timeout (docs/protocol.md §5.7).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import logging
import time
import typing
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait as wait_futures
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from voicesync._schema import convert, docstring_args, is_optional, object_schema, schema_of
from voicesync.errors import VoiceSyncError

if TYPE_CHECKING:  # only for annotations: typing_extensions costs ~5 ms to import
    from typing_extensions import Self

logger = logging.getLogger(__name__)

__all__ = ["Tool", "ToolError", "ToolResult", "format_result", "run_tool_calls", "tool"]

#: How long a tool may run before the model is told it failed (seconds; None: no limit).
DEFAULT_TIMEOUT = 30.0
#: How many tool calls of one model turn run at the same time.
MAX_CONCURRENT_TOOLS = 8

P = ParamSpec("P")
R = TypeVar("R")
_SKIPPED = ("self", "cls")
class Tool(Generic[P, R]):
    """A callable the LLM may invoke. Immutable; safe to share between threads and calls.

    Calling the tool calls the function. On a class, accessing the tool through an instance
    gives a tool bound to that instance.

    Attributes:
        call_parameter: the name of the parameter that receives the live `Call` (a parameter
            named ``call`` or annotated ``Call``), or None.
        ephemeral: the result serves the current reply only and is kept out of the
            conversation history (the wire's ``ephemeral``).
        no_followup: no assistant turn follows this tool's result (the wire's
            ``no_followup``; the platform honours it when every tool of the round has it).
        timeout: seconds the tool may run before the model is told it failed (None: no limit).
    """

    def __init__(self, fn: Callable[P, R], *, name: str | None = None,
                 description: str | None = None, ephemeral: bool = False,
                 no_followup: bool = False, timeout: float | None = DEFAULT_TIMEOUT,
                 _bound: object = None) -> None:
        summary, arg_docs = docstring_args(fn)
        self.fn = fn
        self.name = name or fn.__name__
        self.description = description if description is not None else summary
        self.ephemeral = ephemeral
        self.no_followup = no_followup
        self.timeout = timeout
        self._bound = _bound
        call_type = _call_type()
        hints = typing.get_type_hints(fn, localns={"Call": call_type}, include_extras=True)
        self._hints: dict[str, Any] = {}
        self.call_parameter: str | None = None
        properties: dict[str, Any] = {}
        required: list[str] = []
        params = list(inspect.signature(fn).parameters.values())
        if params and params[0].name in _SKIPPED:
            params = params[1:]
        for param in params:
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            hint = hints.get(param.name, Any)
            if self.call_parameter is None and _is_call(param.name, hint, call_type):
                self.call_parameter = param.name
                continue
            self._hints[param.name] = hint
            prop = schema_of(hint)
            if param.name in arg_docs and arg_docs[param.name] and "description" not in prop:
                prop["description"] = arg_docs[param.name]
            if param.default is not param.empty:
                if _jsonable(param.default):
                    prop["default"] = param.default
            elif not is_optional(hint):
                required.append(param.name)
            properties[param.name] = prop
        self.parameters: dict[str, Any] = object_schema(properties, required)
        functools.update_wrapper(self, fn)

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, instance: object, owner: type[Any]) -> Tool[..., R]: ...
    def __get__(self, instance: object | None, owner: type[Any]) -> Tool[..., R] | Self:
        if instance is None:
            return self
        return Tool(self.fn, name=self.name, description=self.description,
                    ephemeral=self.ephemeral, no_followup=self.no_followup,
                    timeout=self.timeout, _bound=instance)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self._bound is not None:
            return self.fn(self._bound, *args, **kwargs)  # type: ignore[arg-type]
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<voicesync.Tool {self.name}>"

    def run(self, arguments: str | Mapping[str, Any] | None = None, call: object = None) -> R:
        """Call the tool with the model's arguments (a JSON object string or a mapping).

        `call` goes to the tool's `call_parameter` (None outside a call); the model cannot
        set that parameter. Any thread; blocks for as long as the function does. Raises
        whatever the function raises, or ValueError when the arguments are not a JSON object.
        """
        if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
            arguments = {}
        if isinstance(arguments, str):
            arguments = json.loads(arguments)
        if not isinstance(arguments, Mapping):
            raise ValueError(f"Tool {self.name} expects a JSON object of arguments, "
                             f"got {type(arguments).__name__}.")
        kwargs = {k: convert(v, self._hints.get(k, Any)) for k, v in arguments.items()
                  if k != self.call_parameter}
        if self.call_parameter is not None:
            kwargs[self.call_parameter] = call
        function: Callable[..., R] = self
        return function(**kwargs)

    def to_wire(self) -> dict[str, Any]:
        """The tool as `agent.create` declares it (docs/protocol.md §3.5)."""
        return {"type": "function", "function": {
            "name": self.name, "description": self.description, "parameters": self.parameters}}

    def to_openai(self) -> dict[str, Any]:
        """The Chat Completions `tools=[...]` entry (the same shape as the wire)."""
        return self.to_wire()

    def to_openai_responses(self) -> dict[str, Any]:
        """The Responses API `tools=[...]` entry."""
        return {"type": "function", "name": self.name, "description": self.description,
                "parameters": self.parameters}

    def to_anthropic(self) -> dict[str, Any]:
        """The Anthropic Messages `tools=[...]` entry."""
        return {"name": self.name, "description": self.description,
                "input_schema": self.parameters}


def _call_type() -> type:
    from voicesync.call import Call  # late: voicesync.call needs the package loaded

    return Call


def _is_call(name: str, hint: Any, call_type: type) -> bool:
    """A parameter for the live call: named ``call`` (and not typed for the model), or a Call."""
    options = typing.get_args(hint) if is_optional(hint) else (hint,)
    typed = any(isinstance(o, type) and issubclass(o, call_type) for o in options)
    return typed or (name == "call" and hint in (Any, inspect.Parameter.empty))


def _jsonable(value: object) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


@overload
def tool(fn: Callable[P, R], *, name: str | None = None, description: str | None = None,
         ephemeral: bool = False, no_followup: bool = False,
         timeout: float | None = DEFAULT_TIMEOUT) -> Tool[P, R]: ...
@overload
def tool(fn: None = None, *, name: str | None = None, description: str | None = None,
         ephemeral: bool = False, no_followup: bool = False,
         timeout: float | None = DEFAULT_TIMEOUT) -> Callable[[Callable[P, R]], Tool[P, R]]: ...
def tool(fn: Callable[P, R] | None = None, *, name: str | None = None,
         description: str | None = None, ephemeral: bool = False, no_followup: bool = False,
         timeout: float | None = DEFAULT_TIMEOUT,
         ) -> Tool[P, R] | Callable[[Callable[P, R]], Tool[P, R]]:
    """Make `fn` a tool the LLM may call: ``@voicesync.tool`` or ``@voicesync.tool(name=...)``.

    Args:
        fn: the function or method; its type hints give the parameter schema. A parameter
            named ``call`` or annotated ``Call`` receives the live call instead.
        name: the name the model sees (default: the function's name).
        description: what the model is told it does (default: the docstring's summary).
        ephemeral: keep the result out of the conversation history.
        no_followup: no assistant turn after the result (when every tool of the round has it).
        timeout: seconds before the model is told the tool failed (None: no limit).
    """
    def make(f: Callable[P, R]) -> Tool[P, R]:
        return Tool(f, name=name, description=description, ephemeral=ephemeral,
                    no_followup=no_followup, timeout=timeout)

    return make if fn is None else make(fn)


def format_result(result: object) -> str:
    """A tool's return value as the text a model receives."""
    if isinstance(result, str):
        return result
    try:
        return json.dumps(result, default=str)
    except (TypeError, ValueError):
        return str(result)


class ToolError(VoiceSyncError):
    """A tool raised or ran out of time; the model got ``{"error": message}`` and went on.

    Reported through the client's ``error`` event (server-side tools, and the llm helpers
    when given the call). The tool's own exception, if any, is the ``__cause__``.
    """

    def __init__(self, message: str, *, tool: str, tool_call_id: str, call_id: str = "",
                 timed_out: bool = False) -> None:
        super().__init__(message)
        self.tool = tool
        self.tool_call_id = tool_call_id
        self.call_id = call_id
        self.timed_out = timed_out


@dataclasses.dataclass(frozen=True)
class ToolResult:
    """The outcome of one tool call; `result` is ``{"error": message}`` when `error` is True."""

    call_id: str
    name: str
    result: object
    error: bool = False
    ephemeral: bool = False
    no_followup: bool = False

    @property
    def text(self) -> str:
        return format_result(self.result)

    def to_wire(self) -> dict[str, Any]:
        """One ``llm.tool_result`` entry (docs/protocol.md §5.7); the flags travel when true."""
        entry: dict[str, Any] = {"tool_call_id": self.call_id, "result": _wire_value(self.result)}
        if self.ephemeral:
            entry["ephemeral"] = True
        if self.no_followup:
            entry["no_followup"] = True
        return entry


def _wire_value(value: object) -> object:
    return value if _jsonable(value) else str(value)


ToolRequest = tuple[str, str, "str | Mapping[str, Any] | None"]


def run_tool_calls(tools: Iterable[Tool[..., Any]], calls: Iterable[ToolRequest], *,
                   call: object = None, timeout: float | None = None,
                   max_concurrent: int = MAX_CONCURRENT_TOOLS,
                   on_error: Callable[[ToolError], object] | None = None) -> list[ToolResult]:
    """Run one model turn's ``(tool_call_id, name, arguments)`` calls; results in call order.

    The calls run at the same time on up to `max_concurrent` threads named
    ``voicesync-tool_N``; each gets `call` (the live `Call`, if the tool asks for it).
    A tool that raises, outlives its timeout (`timeout`, else the tool's own, counted from
    the start of the round), or is unknown gives ``{"error": "<message>"}`` (docs/protocol.md
    §5.7), so one bad call never ends the conversation; each failure is passed to
    `on_error` as a `ToolError` (without one, logged as a WARNING). A timed-out tool's
    thread runs on until the function returns (Python cannot stop it); its late result is
    dropped.

    Any thread; blocks until every call has a result.
    """
    table = {t.name: t for t in tools}
    requests = list(calls)
    call_id = str(getattr(call, "id", "") or "")
    results: list[ToolResult] = []
    if not requests:
        return results
    started = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=max(1, min(len(requests), max_concurrent)),
                              thread_name_prefix="voicesync-tool")
    try:
        futures: list[Future[Any] | None] = [
            pool.submit(table[name].run, arguments, call) if name in table else None
            for _, name, arguments in requests]
        for (tool_call_id, name, _), future in zip(requests, futures, strict=True):
            found = table.get(name)
            if found is None or future is None:
                results.append(ToolResult(tool_call_id, name, {"error": f"Unknown tool: {name}"},
                                          True))
                continue
            limit = timeout if timeout is not None else found.timeout
            remaining = None if limit is None else max(0.0, started + limit - time.monotonic())
            wait_futures([future], timeout=remaining)
            flags = {"ephemeral": found.ephemeral, "no_followup": found.no_followup}
            error: ToolError | None = None
            if not future.done():
                future.cancel()
                error = ToolError(f"the tool {name} did not finish within {limit:g} s; the "
                                  "model was told it failed (raise its timeout= if it needs "
                                  "longer)", tool=name, tool_call_id=tool_call_id,
                                  call_id=call_id, timed_out=True)
            elif (exc := future.exception()) is not None:
                error = ToolError(str(exc) or type(exc).__name__, tool=name,
                                  tool_call_id=tool_call_id, call_id=call_id)
                error.__cause__ = exc
            if error is None:
                results.append(ToolResult(tool_call_id, name, future.result(), **flags))
                continue
            results.append(ToolResult(tool_call_id, name, {"error": str(error)}, True, **flags))
            if on_error is not None:
                on_error(error)  # the one report (a client's is loud: voicesync._report)
            else:
                logger.warning("tool %s failed%s: %s", name,
                               f" on call {call_id}" if call_id else "", error,
                               exc_info=error.__cause__)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return results
