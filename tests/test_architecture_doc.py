"""docs/architecture.md stays true to the tree, and protocol citations point at real sections."""

from __future__ import annotations

import re
from pathlib import Path

import voicesync

PACKAGE = Path(voicesync.__file__).parent
ROOT = PACKAGE.parent
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def _listed() -> set[str]:
    """The first cell of each row of the Modules table: `x.py` files and `pkg/` packages."""
    text = ARCHITECTURE.read_text()
    table = text[text.index("## Modules"):text.index("## Threads")]
    names: set[str] = set()
    for row in table.splitlines():
        if row.startswith("| `"):
            names.update(re.findall(r"`([\w/.]+)`", row.split("|")[1]))
    return names


def _modules() -> set[str]:
    """Top-level modules (`x.py`) and subpackages (`pkg/`) of voicesync."""
    files = {p.name for p in PACKAGE.glob("*.py")}
    packages = {f"{p.name}/" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    return files | packages


def test_every_module_is_listed_and_every_listed_module_exists() -> None:
    listed, present = _listed(), _modules()
    missing = sorted(present - listed)
    assert not missing, "docs/architecture.md misses modules; add to its Modules table:\n" + \
        "\n".join(f"| `{name}` | <what it owns, in a few words> |" for name in missing)
    gone = sorted(listed - present)
    assert not gone, f"docs/architecture.md lists modules that do not exist: {gone}; " \
        "delete their rows from its Modules table"


def test_protocol_citations_name_sections_that_exist() -> None:
    headings = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)[ .]",
                              (ROOT / "docs" / "protocol.md").read_text(), re.MULTILINE))
    cited: dict[str, set[str]] = {}
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "tests").rglob("*.py"),
                 *(ROOT / "docs").glob("*.md"), ROOT / "README.md"]:
        for refs in re.findall(r"docs/protocol\.md((?:,? ?§[\d.\-§]+)+)", path.read_text()):
            for number in re.findall(r"§(\d+(?:\.\d+)?)", refs):
                cited.setdefault(number, set()).add(str(path.relative_to(ROOT)))
    assert cited, "the scan found no citation at all"
    unknown = {n: sorted(paths) for n, paths in cited.items() if n not in headings}
    assert not unknown, f"cited sections missing from docs/protocol.md: {unknown}"
