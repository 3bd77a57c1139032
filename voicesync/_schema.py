"""JSON schema from Python type hints and Google-style docstrings, and converting arguments back.

What `voicesync.tool` uses to describe a function to a model (docs/protocol.md §3.5).
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

_SCALARS: dict[Any, str] = {str: "string", bool: "boolean", int: "integer", float: "number"}


def docstring_args(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
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
    """The JSON schema of one type hint (the subset docs/protocol.md §3.5 names, plus nesting)."""
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
    from typing_extensions import is_typeddict  # here: ~5 ms `import voicesync` skips

    if is_typeddict(hint):
        hints = typing.get_type_hints(hint, include_extras=True)
        required = [k for k in hints if k in getattr(hint, "__required_keys__", hints)]
        return object_schema({k: schema_of(v) for k, v in hints.items()}, required)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        hints = typing.get_type_hints(hint, include_extras=True)
        props, required = {}, []
        for f in dataclasses.fields(hint):
            props[f.name] = schema_of(hints.get(f.name, Any))
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                required.append(f.name)
        return object_schema(props, required)
    raise TypeError(f"voicesync.tool cannot describe the type {hint!r} as JSON schema; "
                    "use str, int, float, bool, Literal, list, a TypedDict or a dataclass.")


def object_schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def is_optional(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in (
        typing.get_args(hint))


def convert(value: Any, hint: Any) -> Any:
    """Turn decoded JSON into what the annotation asks for, where JSON cannot say it."""
    if typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type) and isinstance(value, Mapping):
        hints = typing.get_type_hints(hint)
        return hint(**{k: convert(v, hints.get(k, Any)) for k, v in value.items()})
    if is_optional(hint) and value is not None:
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return convert(value, options[0]) if len(options) == 1 else value
    return value
