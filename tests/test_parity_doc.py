"""docs/parity.md is checked: every row is supported, different or out of scope (no row
is left unexplained), and every test it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARITY = ROOT / "docs" / "parity.md"
STATUSES = {"yes", "differs", "out of scope"}
CITED = re.compile(r"`((?:[\w/]+/)?test_\w+\.py)(?:::(test_\w+))?")


def _rows() -> list[list[str]]:
    rows = []
    for line in PARITY.read_text().splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        if line.startswith("|") and len(cells) >= 3 and not set(cells[0]) <= {"-"}:
            rows.append(cells)
    return rows


def test_every_row_is_supported_different_or_out_of_scope() -> None:
    statuses = {cells[1] for cells in _rows() if cells[1] != "status"}
    assert statuses <= STATUSES, f"rows neither supported nor explained: {statuses - STATUSES}"
    unexplained = [cells[0] for cells in _rows()
                   if cells[1] in ("differs", "out of scope") and len(cells[2]) < 10]
    assert unexplained == []


def test_every_cited_test_exists() -> None:
    missing = []
    for cells in _rows():
        for path, name in CITED.findall(" ".join(cells[2:])):
            files = list((ROOT / "tests").rglob(Path(path).name))
            files = [f for f in files if f.as_posix().endswith(path)]
            if not files:
                missing.append(path)
            elif name and not any(re.search(rf"^def {name}\(", f.read_text(), re.M)
                                  for f in files):
                missing.append(f"{path}::{name}")
    assert missing == []
