"""docs/security.md stays true: every test it names as a guard exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_guard_in_the_threat_model_names_a_test_that_exists() -> None:
    doc = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    named = set(re.findall(r"\btest_\w+(?=`|,|\))", doc)) - {"test_security_basics",
                                                             "test_security_routes",
                                                             "test_security_redaction",
                                                             "test_security_hostile"}
    defined: set[str] = set()
    for source in [*(ROOT / "tests" / "security").glob("test_*.py"),
                   ROOT / "tests" / "reliability" / "test_reliability_frames.py"]:
        defined |= set(re.findall(r"^def (test_\w+)", source.read_text(encoding="utf-8"),
                                  re.MULTILINE))
    assert len(named) >= 30
    assert sorted(named - defined) == []
    assert "tests/security" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/security.md" in (ROOT / "README.md").read_text(encoding="utf-8")
