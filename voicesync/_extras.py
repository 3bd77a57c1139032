"""Optional extras: which package comes with which extra, and one error when one is missing."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from voicesync.errors import MissingDependencyError

# top-level package -> the voicesync extra that installs it (setup.cfg [options.extras_require])
EXTRA_OF = {
    "websockets": "sim",
    "openai": "llm",
    "anthropic": "llm",
    "langchain_openai": "langchain",
    "flask": "examples",
    "prompt_toolkit": "console",
}


@contextlib.contextmanager
def needs_extra(feature: str) -> Iterator[None]:
    """Turn a missing optional package imported in the block into `MissingDependencyError`.

    Any other ImportError (a voicesync bug, a broken install) passes through unchanged.
    """
    try:
        yield
    except ModuleNotFoundError as exc:
        top = (exc.name or "").partition(".")[0]
        if top not in EXTRA_OF:
            raise
        raise MissingDependencyError(feature, name=top, extra=EXTRA_OF[top]) from None
