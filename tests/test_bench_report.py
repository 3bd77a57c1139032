"""The benchmark's arithmetic: compact quantiles, and goals marked met or not from the figures."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(autouse=True)
def _bench_on_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    pytest.importorskip("psutil")  # workload.py measures RSS with it (the [bench] extra)
    monkeypatch.syspath_prepend(str(BENCH))
    yield
    for name in ("report", "summary", "workload"):  # generic names: leave none behind
        sys.modules.pop(name, None)


def _result(calls: int, cpu: float, ttfc: list[float], **extra: Any) -> dict[str, Any]:
    return {"calls": calls, "cpu_s_per_1k_tokens": cpu, "ttfc_ms": ttfc,
            "interrupt_to_end_ms": [1.0, 2.0, 3.0], "interrupt_to_loop_exit_ms": None,
            "lost_turns": 0, "chunks_after_abort": 0, "rss_kb_per_call": 30.0,
            "dispatch_lag_ms": None, **extra}


def _goals(run: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """goal -> (met against the pool floor, met against the loop floor)."""
    from report import goals  # type: ignore[import-not-found]  # bench/, put on sys.path

    rows = [line.strip("| ").split(" | ") for line in goals(run).splitlines()[2:]]
    return {goal: (met, loop_met) for goal, _, met, _, loop_met in rows}


def test_quantiles_are_nearest_rank_and_small() -> None:
    from summary import quantiles  # type: ignore[import-not-found]

    q = quantiles([float(v) for v in range(1, 1001)])
    assert (q["n"], q["p50"], q["p99"], q["p99.9"], q["max"]) == (1000, 500.0, 990.0, 999.0,
                                                                    1000.0)
    assert quantiles([]) == {"n": 0}


def test_goals_are_judged_against_the_pool_floor_with_the_loop_floor_beside() -> None:
    burst = {"pool_floor": [_result(100, 0.10, [10.0, 20.0, 30.0]),
                            _result(1000, 0.10, [10.0, 20.0, 30.0])],
             "loop_floor": [_result(100, 0.05, [5.0, 10.0, 30.0]),
                            _result(1000, 0.12, [10.0, 20.0, 30.0])],
             "voicesync": [_result(100, 0.11, [14.0, 31.0, 40.0]),
                           _result(1000, 0.13, [90.0, 99.0, 99.0])]}
    spread = {"loop_floor": [_result(1000, 0.1, [1.0, 2.0, 3.0])],
              "voicesync": [_result(1000, 0.1, [1.0, 25.0, 30.0], rss_kb_per_call=31.0)]}
    run = {"environment": {"import_ms": 79.0},
           "results": {"burst": burst, "spread": spread}}
    met = _goals(run)
    assert met["burst 100: CPU per 1k tokens ≤ 1.2x floor"] == ("yes", "**no**")  # 1.1x, 2.2x
    assert met["burst 1000: CPU per 1k tokens ≤ 1.2x floor"] == ("**no**", "yes")  # 1.3x, 1.08x
    assert met["burst 100: turn.end → first chunk p50 ≤ 1.5x floor"] == ("yes", "**no**")
    assert met["burst 100: turn.end → first chunk p99 ≤ 1.5x floor"] == ("**no**", "**no**")
    assert "burst 1000: turn.end → first chunk p50 ≤ 1.5x floor" not in met  # 100, 200 only
    assert met["spread 1000: turn.end → first chunk p99 ≤ 20 ms"] == ("**no**", "—")
    assert met["spread 1000: RSS per call ≤ 32 KB"] == ("yes", "—")
    assert met["spread 1000: 0 lost turns, 0 chunks after abort"] == ("yes", "—")
    assert met["`import voicesync` ≤ 80 ms"] == ("yes", "—")


def test_a_floor_missing_at_a_level_leaves_its_cells_empty() -> None:
    from report import markdown

    burst = {"loop_floor": [_result(100, 0.05, [5.0, 10.0, 30.0])], "pool_floor": [],
             "voicesync": [_result(100, 0.11, [14.0, 31.0, 40.0])]}
    assert _goals({"environment": {"import_ms": 79.0}, "results": {"burst": burst}})[
        "burst 100: CPU per 1k tokens ≤ 1.2x floor"] == ("—", "**no**")
    figures = {"calls": 100, "interrupt_to_loop_exit_ms": None, "chunks_in_flight": 0,
               "cpu_us_per_frame": 1.0, "switches_per_frame": 1.0, "peak_threads": 1,
               "driver_cpu_pct": 1.0, "driver_loop_lag_p99_ms": 1.0}
    for rows in burst.values():
        for row in rows:
            row.update(figures)
    env = {"cpus": 2, "python": "3", "websocket-client": "1", "voicesync": "0", "commit": "x",
           "date": "d", "loadavg_1m": 1.0, "import_ms": 90.0}
    text = markdown({"environment": env, "elapsed_s": 1.0, "results": {"burst": burst},
                     "workloads": {"burst": {"calls": [100], "turns": 5, "gap_s": 0.5}}})
    assert "| 100 | loop floor | 2.80x / 3.10x / 1.33x |" in text  # voicesync ÷ loop floor
    assert "| 100 | pool floor (the issue's) |" not in text  # no row, figures or ratios


def test_a_level_that_did_not_finish_is_named_above_the_tables() -> None:
    from report import markdown

    env = {"cpus": 2, "python": "3", "websocket-client": "1", "voicesync": "0", "commit": "x",
           "date": "d", "loadavg_1m": 1.0, "import_ms": 90.0}
    run = {"environment": env, "elapsed_s": 1.0, "failed": ["burst 1000: overstayed"],
           "workloads": {}, "results": {}}
    assert "did not finish (left out below): burst 1000: overstayed." in markdown(run)

