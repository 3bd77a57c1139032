"""`@voicesync.tool`: a function (or method) the LLM may call, with its JSON schema.

The schema comes from the type hints and the Google-style docstring (`Args:` section). The
wire shape is PROTOCOL.md §3.5 (OpenAI function calling); `to_openai_responses()` and
`to_anthropic()` give the other providers' shapes. Ints are ``"integer"``, a JSON-schema type
every provider accepts.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import json
import logging
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, Literal, TypeVar, overload

from typing_extensions import ParamSpec, Self, is_typeddict

logger = logging.getLogger(__name__)

__all__ = ["Tool", "ToolResult", "format_result", "run_tool_calls", "tool"]

P = ParamSpec("P")
R = TypeVar("R")
_SKIPPED = ("self", "cls")
_SCALARS: dict[Any, str] = {str: "string", bool: "boolean", int: "integer", float: "number"}


def _docstring(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """The summary paragraph and the `Args:` descriptions of a Google-style docstring."""
    doc = inspect.getdoc(fn) or ""
    summary = " ".join(line.strip() for line in doc.split("\n\n", 1)[0].splitlines())
    args: dict[str, str] = {}
    lines = iter(doc.splitlines())
    for line in lines:
        if line.strip() in ("Args:", "Arguments:", "Parameters:"):
            break
    base, current = -1, ""
    for line in lines:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            break  # the next section
        base = indent if base < 0 else base
        entry = re.match(r"\s*\**(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$", line)
        if indent == base and entry:
            current = entry.group(1)
            args[current] = entry.group(2).strip()
        elif current:
            args[current] = f"{args[current]} {line.strip()}".strip()
    return summary, args


def schema_of(hint: Any) -> dict[str, Any]:
    """The JSON schema of one type hint (the subset PROTOCOL.md §3.5 names, plus nesting)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        schema = schema_of(args[0])
        notes = [a for a in args[1:] if isinstance(a, str)]
        return {**schema, "description": notes[0]} if notes else schema
    if hint is Any or hint is inspect.Parameter.empty:
        return {}
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return schema_of(options[0])
        return {"anyOf": [schema_of(a) for a in options]}
    if origin is Literal:
        kind = _SCALARS.get(type(args[0]), "string")
        return {"type": kind, "const": args[0]} if len(args) == 1 else {"type": kind,
                                                                        "enum": list(args)}
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        values = [member.value for member in hint]
        return {"type": "integer" if all(isinstance(v, int) for v in values) else "string",
                "enum": values}
    if hint in (list, tuple, set, frozenset) or origin in (list, tuple, set, frozenset, Sequence,
                                                           Iterable):
        items = args[0] if args and args[0] is not Ellipsis else Any
        return {"type": "array", "items": schema_of(items)} if items is not Any else {
            "type": "array"}
    if hint is dict or origin in (dict, Mapping):
        return {"type": "object"}
    if is_typeddict(hint):
        hints = typing.get_type_hints(hint, include_extras=True)
        required = [k for k in hints if k in getattr(hint, "__required_keys__", hints)]
        return _object({k: schema_of(v) for k, v in hints.items()}, required)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        hints = typing.get_type_hints(hint, include_extras=True)
        props, required = {}, []
        for f in dataclasses.fields(hint):
            props[f.name] = schema_of(hints.get(f.name, Any))
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                required.append(f.name)
        return _object(props, required)
    raise TypeError(f"voicesync.tool cannot describe the type {hint!r} as JSON schema; "
                    "use str, int, float, bool, Literal, list, a TypedDict or a dataclass.")


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _optional(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in (
        typing.get_args(hint))


def _convert(value: Any, hint: Any) -> Any:
    """Turn decoded JSON into what the annotation asks for, where JSON cannot say it."""
    if typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type) and isinstance(value, Mapping):
        hints = typing.get_type_hints(hint)
        return hint(**{k: _convert(v, hints.get(k, Any)) for k, v in value.items()})
    if _optional(hint) and value is not None:
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(value, options[0]) if len(options) == 1 else value
    return value


class Tool(Generic[P, R]):
    """A callable the LLM may invoke. Immutable; safe to share between threads and calls.

    Calling the tool calls the function. On a class, accessing the tool through an instance
    gives a tool bound to that instance.
    """

    def __init__(self, fn: Callable[P, R], *, name: str | None = None,
                 description: str | None = None, _bound: object = None) -> None:
        summary, arg_docs = _docstring(fn)
        self.fn = fn
        self.name = name or fn.__name__
        self.description = description if description is not None else summary
        self._bound = _bound
        hints = typing.get_type_hints(fn, include_extras=True)
        self._hints: dict[str, Any] = {}
        properties: dict[str, Any] = {}
        required: list[str] = []
        params = list(inspect.signature(fn).parameters.values())
        if params and params[0].name in _SKIPPED:
            params = params[1:]
        for param in params:
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            hint = hints.get(param.name, Any)
            self._hints[param.name] = hint
            prop = schema_of(hint)
            if param.name in arg_docs and arg_docs[param.name] and "description" not in prop:
                prop["description"] = arg_docs[param.name]
            if param.default is not param.empty:
                if _jsonable(param.default):
                    prop["default"] = param.default
            elif not _optional(hint):
                required.append(param.name)
            properties[param.name] = prop
        self.parameters: dict[str, Any] = _object(properties, required)
        functools.update_wrapper(self, fn)

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, instance: object, owner: type[Any]) -> Tool[..., R]: ...
    def __get__(self, instance: object | None, owner: type[Any]) -> Tool[..., R] | Self:
        if instance is None:
            return self
        bound = Tool(self.fn, name=self.name, description=self.description, _bound=instance)
        return bound

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self._bound is not None:
            return self.fn(self._bound, *args, **kwargs)  # type: ignore[arg-type]
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<voicesync.Tool {self.name}>"

    def run(self, arguments: str | Mapping[str, Any] | None = None) -> R:
        """Call the tool with the model's arguments (a JSON object string or a mapping).

        Any thread; blocks for as long as the function does. Raises whatever the function
        raises, or ValueError when the arguments are not a JSON object.
        """
        if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
            arguments = {}
        if isinstance(arguments, str):
            arguments = json.loads(arguments)
        if not isinstance(arguments, Mapping):
            raise ValueError(f"Tool {self.name} expects a JSON object of arguments, "
                             f"got {type(arguments).__name__}.")
        kwargs = {k: _convert(v, self._hints.get(k, Any)) for k, v in arguments.items()}
        call: Callable[..., R] = self
        return call(**kwargs)

    def to_wire(self) -> dict[str, Any]:
        """The tool as `agent.create` declares it (PROTOCOL.md §3.5)."""
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


def _jsonable(value: object) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


@overload
def tool(fn: Callable[P, R], *, name: str | None = None,
         description: str | None = None) -> Tool[P, R]: ...
@overload
def tool(fn: None = None, *, name: str | None = None,
         description: str | None = None) -> Callable[[Callable[P, R]], Tool[P, R]]: ...
def tool(fn: Callable[P, R] | None = None, *, name: str | None = None,
         description: str | None = None) -> Tool[P, R] | Callable[[Callable[P, R]], Tool[P, R]]:
    """Make `fn` a tool the LLM may call: ``@voicesync.tool`` or ``@voicesync.tool(name=...)``.

    Args:
        fn: the function or method; its type hints give the parameter schema.
        name: the name the model sees (default: the function's name).
        description: what the model is told it does (default: the docstring's summary).
    """
    if fn is None:
        return lambda f: Tool(f, name=name, description=description)
    return Tool(fn, name=name, description=description)


def format_result(result: object) -> str:
    """A tool's return value as the text a model receives."""
    if isinstance(result, str):
        return result
    try:
        return json.dumps(result, default=str)
    except (TypeError, ValueError):
        return str(result)


@dataclasses.dataclass(frozen=True)
class ToolResult:
    """The outcome of one tool call; `result` is ``{"error": message}`` when `error` is True."""

    call_id: str
    name: str
    result: object
    error: bool = False

    @property
    def text(self) -> str:
        return format_result(self.result)


def run_tool_calls(tools: Iterable[Tool[..., Any]],
                   calls: Iterable[tuple[str, str, str | Mapping[str, Any] | None]]
                   ) -> list[ToolResult]:
    """Run ``(call_id, name, arguments)`` calls in order and return their results.

    A failing or unknown tool gives ``{"error": "<message>"}`` (PROTOCOL.md §5.7), so one bad
    call never ends the conversation. Any thread; blocks while the tools run.
    """
    table = {t.name: t for t in tools}
    results: list[ToolResult] = []
    for call_id, name, arguments in calls:
        found = table.get(name)
        if found is None:
            results.append(ToolResult(call_id, name, {"error": f"Unknown tool: {name}"}, True))
            continue
        try:
            results.append(ToolResult(call_id, name, found.run(arguments)))
        except Exception as exc:
            logger.warning("tool %s failed: %s", name, exc, exc_info=True)
            results.append(ToolResult(call_id, name, {"error": str(exc) or type(exc).__name__},
                                      True))
    return results
