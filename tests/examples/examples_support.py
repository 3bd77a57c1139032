"""Running examples as a new user would: `python examples/x.py` in a clean environment."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
# Keys and endpoints that would switch an example away from its no-key mode.
KEY_VARIABLES = ("PINECALL_API_KEY", "PINECALL_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL",
                 "OPENAI_API_BASE", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any key, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def start_example(name: str, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(EXAMPLES / name), *args], cwd=ROOT,
                            env=clean_env(**env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def import_example(name: str) -> ModuleType:
    """Import an example file as a module (its `__main__` block does not run)."""
    path = EXAMPLES / name
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
