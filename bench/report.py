"""The results as markdown tables (absolute figures, ratios to each floor, goals) and a chart.

Two floors: the loop floor (agent_floor.py, one thread and a heap of timers: the
strictest) and the pool floor (agent_pool_floor.py, one reader and 8 workers: the floor
issue 14's goals are written against). Goals are judged against the pool floor; the
loop floor's ratio is shown next to each, so the stricter comparison stays visible.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from workload import INTERRUPT_AFTER, TOKEN_INTERVAL, TOKENS

Result = dict[str, Any]
Run = dict[str, Any]
LATENCIES = (("ttfc_ms", "turn.end → first chunk"),
             ("interrupt_to_end_ms", "interruption → end frame"),
             ("interrupt_to_loop_exit_ms", "interruption → handler loop exit"))
IMPORT_GOAL_MS = 80
LABELS = {"loop_floor": "loop floor", "pool_floor": "pool floor (the issue's)",
          "voicesync": "voicesync"}
FLOORS = ("pool_floor", "loop_floor")  # the first is the one goals are judged against
PACING = {
    "spread": "each call plays {turns} turns, a mean {gap:g} s (exponential) apart",
    "burst": "every call's turn arrives at once (one socket write, round after round): "
             "{turns} rounds, the next {gap:g} s after every reply of the last one ended",
}


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 10:
        return f"{value:.2f}"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _triple(values: list[float] | None) -> str:
    return " / ".join(_num(v) for v in values) if values else "—"


def _ratio(ours: float | None, floor: float | None) -> str:
    if ours is None or not floor:
        return "—"
    ratio = ours / floor
    return f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.1g}x"  # a queued floor: 0.002x


def _ratios(ours: list[float] | None, floor: list[float] | None) -> str:
    if not ours or not floor:
        return "—"
    return " / ".join(_ratio(a, b) for a, b in zip(ours, floor, strict=True))


def environment(run: Run) -> str:
    env = run["environment"]
    return (
        f"Driver and agent are separate processes on {env['cpus']} CPUs; Python "
        f"{env['python']}, websocket-client {env['websocket-client']}, voicesync "
        f"{env['voicesync']} ({env['commit']}), {env['date']}, {run['elapsed_s']:.0f} s in all; "
        f"1-minute load average {env.get('loadavg_1m_before', '?')} before, "
        f"{env['loadavg_1m']} after (the box is shared). Every reply is {TOKENS} tokens at "
        f"{1 / TOKEN_INTERVAL:.0f} tokens/s from a blocking iterator; half the turns are "
        f"interrupted after {INTERRUPT_AFTER} chunks. Latencies in ms, p50 / p99 / max, timed "
        "by the driver (dispatch lag by the SDK).\n\n"
        f"`import voicesync` in a fresh interpreter: {env['import_ms']} ms wall clock, "
        f"{env.get('import_cpu_ms', '?')} ms CPU (best of {env.get('import_runs', 7)}, with "
        "compiled bytecode as an installed package has it).\n")


def markdown(run: Run) -> str:
    """The environment, then per workload its figures and its voicesync ÷ floor ratios."""
    parts = [environment(run)]
    if run.get("failed"):
        parts.append("Levels that did not finish (left out below): "
                     + "; ".join(run["failed"]) + ".\n")
    for mode, results in run["results"].items():
        spec = run["workloads"][mode]
        parts.append(f"### {mode.capitalize()} workload\n\nN concurrent calls on one "
                     f"connection; {PACING[mode].format(**spec, gap=spec['gap_s'])}.\n")
        parts.append(_figures(results))
        if "voicesync" in results and any(floor in results for floor in FLOORS):
            parts.append(_ratio_table(results))
    return "\n".join(parts)


def _levels(results: dict[str, list[Result]]) -> list[int]:
    return sorted({r["calls"] for rows in results.values() for r in rows})


def _figures(results: dict[str, list[Result]]) -> str:
    lines = [
        "| calls | client | turn.end → first chunk | interruption → end frame | interruption → "
        "handler loop exit | chunks after abort (in flight) | lost turns | CPU s / 1k tokens "
        "| CPU µs / frame | context switches / frame | RSS KB / call | dispatch lag | threads "
        "| driver CPU % (loop lag p99 ms) |",
        "|" + "---|" * 14,
    ]
    for calls in _levels(results):
        for client, rows in results.items():
            r = _at(rows, calls)
            if r is None:  # a floor that does not play this level
                continue
            lag = r["dispatch_lag_ms"]
            lines.append(
                f"| {r['calls']} | {LABELS.get(client, client)} | {_triple(r['ttfc_ms'])} | "
                f"{_triple(r['interrupt_to_end_ms'])} | "
                f"{_triple(r['interrupt_to_loop_exit_ms'])} | {r['chunks_after_abort']} "
                f"({r['chunks_in_flight']}) | {r['lost_turns']} | "
                f"{_num(r['cpu_s_per_1k_tokens'])} | {_num(r['cpu_us_per_frame'])} | "
                f"{_num(r['switches_per_frame'])} | "
                f"{_num(r['rss_kb_per_call'])} | {_triple(lag) if lag else 'inline'} | "
                f"{r['peak_threads']} | {r['driver_cpu_pct']:.0f} "
                f"({_num(r['driver_loop_lag_p99_ms'])}) |")
    return "\n".join(lines) + "\n"


def _ratio_table(results: dict[str, list[Result]]) -> str:
    lines = ["voicesync ÷ each floor (same run):", "",
             "| calls | ÷ | turn.end → first chunk | interruption → end frame | interruption"
             " → handler loop exit | CPU / 1k tokens | CPU / frame | RSS / call |",
             "|" + "---|" * 8]
    for ours in results["voicesync"]:
        for name in FLOORS:
            floor = _at(results.get(name, []), ours["calls"])
            if floor is None:
                continue
            lines.append(
                f"| {ours['calls']} | {LABELS[name]} | "
                + " | ".join(_ratios(ours[key], floor[key]) for key, _ in LATENCIES)
                + f" | {_ratio(ours['cpu_s_per_1k_tokens'], floor['cpu_s_per_1k_tokens'])} | "
                f"{_ratio(ours['cpu_us_per_frame'], floor['cpu_us_per_frame'])} | "
                f"{_ratio(ours['rss_kb_per_call'], floor['rss_kb_per_call'])} |")
    return "\n".join(lines) + "\n"


def _at(results: list[Result], calls: int) -> Result | None:
    return next((r for r in results if r["calls"] == calls), None)


# A goal, what was measured and whether it was met; a goal relative to the floor also has
# the loop floor's figure and verdict ("" and None for an absolute goal).
Goal = tuple[str, str, bool | None, str, bool | None]


def _relative(label: str, mine: float | None, floors: dict[str, Result | None], *,
              key: str, index: int | None, limit: float, unit: str) -> Goal:
    """`mine` within `limit` times each floor's figure (`floors[name][key]`, or its
    `index`-th item): the pool floor decides, the loop floor is shown beside it."""
    cells: list[tuple[str, bool | None]] = []
    for name in FLOORS:
        r = floors.get(name)
        value = r[key] if r else None
        theirs = value[index] if index is not None and value else value
        if mine is None or not theirs:
            cells.append(("—", None))
            continue
        shown = f"{_num(mine)} vs {_num(theirs)} {unit} ({_ratio(mine, theirs)})"
        cells.append((shown, mine <= limit * theirs))
    (pool, pool_met), (loop, loop_met) = cells
    return (f"{label} ≤ {limit:g}x floor", pool, pool_met, loop, loop_met)


def _near_floor(mine: Result, floors: dict[str, Result | None], where: str, limit: float,
                keys: tuple[tuple[str, str], ...]) -> list[Goal]:
    """voicesync's p50 and p99 of each latency in `keys` within `limit` times the floor's."""
    rows: list[Goal] = []
    for key, label in keys:
        for index, name in ((0, "p50"), (1, "p99")):
            if mine[key]:
                rows.append(_relative(f"{where}: {label} {name}", mine[key][index], floors,
                                      key=key, index=index, limit=limit, unit="ms"))
    return rows


def _cpu(mine: Result, floors: dict[str, Result | None], where: str, limit: float) -> Goal:
    return _relative(f"{where}: CPU per 1k tokens", mine["cpu_s_per_1k_tokens"], floors,
                     key="cpu_s_per_1k_tokens", index=None, limit=limit, unit="s")


def _floors(results: dict[str, list[Result]], calls: int) -> dict[str, Result | None]:
    return {name: _at(results.get(name, []), calls) for name in FLOORS}


def _absolute(goal: str, measured: str, met: bool) -> Goal:
    return (goal, measured, met, "", None)


def _clean(r: Result, where: str) -> Goal:
    return _absolute(f"{where}: 0 lost turns, 0 chunks after abort",
                     f"{r['lost_turns']}, {r['chunks_after_abort']}",
                     r["lost_turns"] == 0 and r["chunks_after_abort"] == 0)


def _p99(r: Result, key: str, label: str, where: str, limit: float) -> Goal:
    p99 = r[key][1] if r[key] else None
    return _absolute(f"{where}: {label} p99 ≤ {limit:g} ms", f"{_num(p99)} ms",
                     p99 is not None and p99 <= limit)


def _met(met: bool | None) -> str:
    return "—" if met is None else "yes" if met else "**no**"


def goals(run: Run) -> str:
    """Issue 14's goals, then the earlier spread-out goals, each measured and met or not."""
    rows: list[Goal] = []
    burst, spread = run["results"].get("burst"), run["results"].get("spread")
    if burst:  # item 2: CPU within 1.2x of the floor at every N; latencies at 100 and 200
        for mine in burst["voicesync"]:
            where, floors = f"burst {mine['calls']}", _floors(burst, mine["calls"])
            rows.append(_cpu(mine, floors, where, 1.2))
            if mine["calls"] in (100, 200):
                rows += _near_floor(mine, floors, where, 1.5, LATENCIES[:2])
    r1000 = _at(spread["voicesync"], 1000) if spread else None
    if r1000:  # item 3
        rows.append(_clean(r1000, "spread 1000"))
        rows.append(_p99(r1000, "ttfc_ms", LATENCIES[0][1], "spread 1000", 20))
        rows.append(_absolute("spread 1000: RSS per call ≤ 32 KB",
                              f"{_num(r1000['rss_kb_per_call'])} KB",
                              r1000["rss_kb_per_call"] <= 32))
    took = run["environment"]["import_ms"]  # item 4
    rows.append(_absolute(f"`import voicesync` ≤ {IMPORT_GOAL_MS} ms", f"{took} ms",
                          took <= IMPORT_GOAL_MS))
    rows += _earlier_goals(spread) if spread else []
    lines = ["| goal | measured (against the pool floor, the issue's) | met "
             "| against the loop floor | met |", "|---|---|---|---|---|"]
    lines += [f"| {goal} | {value} | {_met(met)} | {loop or '—'} | {_met(loop_met)} |"
              for goal, value, met, loop, loop_met in rows]
    return "\n".join(lines) + "\n"


def _earlier_goals(spread: dict[str, list[Result]]) -> list[Goal]:
    """The spread-out workload's goals from before the burst workload (kept as a floor)."""
    ours, rows = spread["voicesync"], []
    r100, r500 = _at(ours, 100), _at(ours, 500)
    if r100:
        rows += [_p99(r100, key, label, "spread 100", 10) for key, label in LATENCIES[:2]]
        rows.append(_clean(r100, "spread 100"))
    if r500:
        rows.append(_clean(r500, "spread 500"))
        rows += [_p99(r500, key, label, "spread 500", 50)
                 for key, label in (*LATENCIES, ("dispatch_lag_ms", "dispatch lag"))]
        rows.append(_absolute("spread 500: RSS per call ≤ 64 KB",
                              f"{_num(r500['rss_kb_per_call'])} KB",
                              r500["rss_kb_per_call"] <= 64))
    for calls in (1, 10):
        mine, floors = _at(ours, calls), _floors(spread, calls)
        if mine and any(floors.values()):
            rows += _near_floor(mine, floors, f"spread {calls}", 1.5, LATENCIES[:2])
            rows.append(_cpu(mine, floors, f"spread {calls}", 1.5))
    return rows


def chart(run: Run, path: Path) -> None:
    """Latency percentiles against concurrent calls: a row per workload, a panel per figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    modes = list(run["results"])
    fig, grid = plt.subplots(len(modes), len(LATENCIES), figsize=(15, 4.4 * len(modes)),
                             squeeze=False)
    styles = {"voicesync": ("-", "tab:blue"), "pool_floor": ("--", "tab:orange"),
              "loop_floor": (":", "tab:gray")}
    for axes, mode in zip(grid, modes, strict=True):
        results = run["results"][mode]
        for ax, (key, label) in zip(axes, LATENCIES, strict=True):
            for client, rows in results.items():
                line, color = styles.get(client, (":", "black"))
                have = [r for r in rows if r[key]]
                calls = [r["calls"] for r in have]
                for index, (name, marker) in enumerate((("p50", "o"), ("p99", "s"),
                                                        ("max", "^"))):
                    ax.plot(calls, [r[key][index] for r in have], line, marker=marker,
                            color=color, alpha=(1.0, 0.8, 0.4)[index],
                            label=f"{LABELS.get(client, client)} {name}")
            ax.set_xscale("log")
            ax.xaxis.set_minor_locator(ticker.NullLocator())  # only the N levels are labelled
            ax.set_xticks([r["calls"] for r in results["voicesync"]],
                          [str(r["calls"]) for r in results["voicesync"]])
            ax.set_yscale("log")
            ax.set_title(f"{mode}: {label}")
            ax.set_xlabel("concurrent calls")
            ax.grid(True, which="both", alpha=0.3)
        axes[0].set_ylabel("ms (driver clock)")
        axes[-1].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    canvas = io.BytesIO()
    fig.savefig(canvas, dpi=100)
    plt.close(fig)
    from PIL import Image  # matplotlib's own dependency

    # A 64-colour palette: lines on white need no more, and the PNG is a third the size.
    Image.open(canvas).convert("RGB").quantize(colors=64).save(path, optimize=True)
