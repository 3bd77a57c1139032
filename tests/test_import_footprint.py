"""The library does not configure the application: `import voicesync` loads no dev-only module,
and only the command line and the examples' entry point touch logging set-up or os.environ.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import voicesync

PACKAGE = Path(voicesync.__file__).parent
# Modules a program that only serves calls never needs: tools for development and examples,
# optional extras, and the command line.
DEV_ONLY = ("voicesync.local", "voicesync.sim", "voicesync.testing", "voicesync.console",
            "voicesync.demo", "voicesync.__main__", "voicesync._narration", "voicesync.llm",
            "websockets", "openai", "anthropic", "pytest", "prompt_toolkit", "flask",
            # Loaded on first use, so `import voicesync` stays fast (issue 14: ≤ 80 ms):
            # `requests` with the first REST call, tempfile with the first history file.
            "requests", "urllib3", "charset_normalizer", "tempfile", "secrets",
            # ... the REST resources with the first Client, typing_extensions (annotations
            # only) with the first tool schema, difflib with the first misspelt event name.
            "voicesync.rest", "voicesync.returning", "typing_extensions", "difflib")

ENV_WRITES = ("os.environ.pop", "os.environ.update", "os.environ.setdefault", "os.putenv")
PROBE = """
import io, json, logging, os, sys
env = dict(os.environ)
out, sys.stdout = sys.stdout, io.StringIO()
import voicesync
printed, sys.stdout = sys.stdout.getvalue(), out
print(json.dumps({"modules": sorted(sys.modules), "printed": printed,
                  "root_handlers": len(logging.getLogger().handlers),
                  "env_changed": dict(os.environ) != env}))
"""


def test_import_voicesync_loads_no_dev_only_module_and_configures_nothing() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          timeout=60, check=True)
    seen = json.loads(done.stdout)
    loaded = [m for m in seen["modules"] if m.split(".")[0] in {d.split(".")[0] for d in DEV_ONLY}
              and any(m == d or m.startswith(d + ".") for d in DEV_ONLY)]
    assert loaded == [], f"`import voicesync` loaded {loaded}: import them where they are used"
    assert seen["printed"] == "" and done.stderr == ""
    assert seen["root_handlers"] == 0 and not seen["env_changed"]


def test_lazy_names_still_work() -> None:
    assert voicesync.local.run is not None
    assert voicesync.llm.stream_openai is not None
    assert voicesync.rest.Rest is not None and voicesync.returning is not None
    assert repr(voicesync.ProviderError) == "<class 'voicesync.ProviderError'>"


def _calls(path: Path) -> list[tuple[str, str]]:
    """(enclosing function, what) for each basicConfig call and os.environ write in `path`."""
    found: list[tuple[str, str]] = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef | ast.ClassDef) else where
            text = ast.unparse(child) if isinstance(child, ast.expr | ast.stmt) else ""
            if isinstance(child, ast.Call) and text.startswith("logging.basicConfig"):
                found.append((where, "basicConfig"))
            elif ((isinstance(child, ast.Assign | ast.Delete) and "os.environ[" in text)
                  or (isinstance(child, ast.Call) and text.startswith(ENV_WRITES))):
                found.append((where, "os.environ write"))
            visit(child, inner)

    visit(ast.parse(path.read_text()), "<module>")
    return found


def test_only_the_entry_points_configure_logging_or_write_the_environment() -> None:
    allowed = {
        ("__main__.py", "sim_main", "basicConfig"),  # `voicesync sim`
        ("local.py", "run", "basicConfig"),  # an example's entry point
        ("local.py", "_set_env", "os.environ write"),  # local mode only, restored by close()
        ("local.py", "close", "os.environ write"),
    }
    found = {(str(path.relative_to(PACKAGE)), where, what)
             for path in sorted(PACKAGE.rglob("*.py")) for where, what in _calls(path)}
    assert found <= allowed, f"configures the application: {sorted(found - allowed)}"
    assert ("local.py", "run", "basicConfig") in found  # the scan sees what it looks for
