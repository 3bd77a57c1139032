"""Scenario files: YAML documents (one or more per file, separated by ``---``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from voicesync.errors import ConfigurationError
from voicesync.scenarios._spec import Scenario, from_mapping

SUFFIXES = (".yaml", ".yml")


def load(path: str | Path) -> list[Scenario]:
    """Every scenario in one YAML file. Needs PyYAML (the `testing` extra)."""
    try:
        import yaml
    except ImportError:
        raise ConfigurationError(
            "scenario files need PyYAML: pip install 'voicesync[testing]'") from None
    file = Path(path)
    try:
        docs = [d for d in yaml.safe_load_all(file.read_text(encoding="utf-8")) if d]
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{file}: not valid YAML: {exc}") from None
    scenarios = [from_mapping(doc, path=file) for doc in docs]
    if len(scenarios) > 1:
        for index, scenario in enumerate(scenarios, 1):
            if scenario.name == file.stem:
                scenario.name = f"{file.stem}[{index}]"
    return scenarios


def find(paths: Iterable[str | Path]) -> list[Path]:
    """Scenario files: the files given, and every *.yaml / *.yml under the folders given."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
        elif path.is_file():
            found.append(path)
        else:
            raise ConfigurationError(f"no scenario file or folder {path}")
    return found
