"""A missing optional package gives one message everywhere: the `pip install` line that adds it.

Absence is simulated with ``sys.modules[name] = None`` (the import then fails exactly as
when the package is not installed), in a subprocess so this interpreter keeps its modules.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from examples_support import EXAMPLES, ROOT, clean_env

import voicesync
from voicesync._extras import needs_extra
from voicesync.llm import AnthropicAgent, OpenAIAgent

SIM_MESSAGE = ("voicesync.sim needs the 'websockets' package, which is not installed: "
               'pip install "voicesync[sim]"')


def _run_without(package: str, code: str, *args: str,
                 cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    blocker = f"import sys; sys.modules[{package!r}] = None; sys.argv[1:] = {list(args)!r}\n"
    return subprocess.run([sys.executable, "-c", blocker + code], cwd=cwd, env=clean_env(),
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("command", ["demo", "sim", "console"])
def test_the_cli_prints_the_pip_line_and_exits_2(command: str, tmp_path: Path) -> None:
    agent = tmp_path / "agent.py"
    agent.write_text("import voicesync\nagent = voicesync.Agent('a')\n")
    args = [command, str(agent)] if command == "console" else [command]
    done = _run_without("websockets", "import runpy; runpy.run_module('voicesync', "
                        "run_name='__main__')", *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr == f"voicesync {command}: {SIM_MESSAGE}\n"


def test_an_example_fails_with_the_pip_line_not_a_bare_import_error() -> None:
    done = _run_without("websockets", "import runpy; runpy.run_path(sys.argv[1], "
                        "run_name='__main__')", str(EXAMPLES / "quickstart.py"))
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == f"voicesync.MissingDependencyError: {SIM_MESSAGE}"
    assert "ModuleNotFoundError" not in done.stderr


def test_an_example_needing_a_provider_names_its_extra() -> None:
    done = _run_without("openai", "import runpy; runpy.run_path(sys.argv[1], "
                        "run_name='__main__')", str(EXAMPLES / "openai_agent.py"))
    assert done.stderr.splitlines()[-1] == (
        "voicesync.MissingDependencyError: examples/openai_agent.py needs the 'openai' package, "
        'which is not installed: pip install "voicesync[llm]"')


def test_the_pytest_fixtures_fail_with_the_pip_line(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        "import sys\nsys.modules['websockets'] = None\n"
        "from voicesync.testing import voicesync_sim  # noqa: F401\n")
    (tmp_path / "test_mine.py").write_text("def test_it(voicesync_sim):\n    pass\n")
    done = _run_without("websockets", "import pytest; sys.exit(pytest.main(['-q', '-p', "
                        "'no:cacheprovider', '-p', 'no:voicesync', 'test_mine.py']))",
                        cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"MissingDependencyError: {SIM_MESSAGE}" in done.stdout
    assert "No module named" not in done.stdout


@pytest.mark.parametrize("agent_class, package", [(OpenAIAgent, "openai"),
                                                  (AnthropicAgent, "anthropic")])
def test_the_llm_agents_name_the_llm_extra(agent_class: type[OpenAIAgent | AnthropicAgent],
                                           package: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, package, None)
    agent = agent_class("bot", model="m")
    with pytest.raises(voicesync.MissingDependencyError,
                       match=rf"needs the '{package}' package.*voicesync\[llm\]") as caught:
        agent._new_provider_client()
    assert isinstance(caught.value, ImportError)  # `except ImportError` keeps working
    assert caught.value.name == package and caught.value.extra == "llm"


def test_other_import_errors_pass_through_unchanged() -> None:
    with pytest.raises(ModuleNotFoundError) as caught, needs_extra("x"):
        import voicesync_no_such_module  # type: ignore[import-not-found]  # noqa: F401
    assert not isinstance(caught.value, voicesync.VoiceSyncError)
