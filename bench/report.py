"""The results as markdown tables (absolute figures, ratios to the floor, goals) and a chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workload import INTERRUPT_AFTER, TOKEN_INTERVAL, TOKENS

Result = dict[str, Any]
LATENCIES = (("ttfc_ms", "turn.end → first chunk"),
             ("interrupt_to_end_ms", "interruption → end frame"),
             ("interrupt_to_loop_exit_ms", "interruption → handler loop exit"))


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
    return f"{ours / floor:.2f}x"


def _ratios(ours: list[float] | None, floor: list[float] | None) -> str:
    if not ours or not floor:
        return "—"
    return " / ".join(_ratio(a, b) for a, b in zip(ours, floor, strict=True))


def markdown(run: dict[str, Any]) -> str:
    env, results = run["environment"], run["results"]
    lines = [
        "Workload: N concurrent calls on one connection; each call plays "
        f"{run['workload']['turns']} turns, a mean {run['workload']['gap_s']:g} s "
        "(exponential) apart; every reply is "
        f"{TOKENS} tokens at {1 / TOKEN_INTERVAL:.0f} tokens/s from a blocking iterator; half "
        f"the turns are interrupted after {INTERRUPT_AFTER} chunks. Driver and agent are "
        f"separate processes on {env['cpus']} CPUs; Python {env['python']}, websocket-client "
        f"{env['websocket-client']}, voicesync {env['voicesync']} ({env['commit']}), "
        f"{env['date']}; 1-minute load average {env.get('loadavg_1m_before', '?')} before, "
        f"{env['loadavg_1m']} after (the box is shared). Latencies in ms, p50 / p99 / max, "
        "timed by the driver "
        "(dispatch lag by the SDK).",
        "",
        f"`import voicesync` in a fresh interpreter: {env.get('import_ms', '?')} ms (best of 7).",
        "",
        "| calls | client | turn.end → first chunk | interruption → end frame | interruption → "
        "handler loop exit | chunks after abort (in flight) | lost turns | CPU s / 1k tokens "
        "| RSS KB / call | dispatch lag | threads | driver CPU % |",
        "|" + "---|" * 12,
    ]
    for row in zip(*results.values(), strict=True):
        for client, r in zip(results, row, strict=True):
            lag = r["dispatch_lag_ms"]
            lines.append(
                f"| {r['calls']} | {client} | {_triple(r['ttfc_ms'])} | "
                f"{_triple(r['interrupt_to_end_ms'])} | "
                f"{_triple(r['interrupt_to_loop_exit_ms'])} | {r['chunks_after_abort']} "
                f"({r['chunks_in_flight']}) | {r['lost_turns']} | "
                f"{_num(r['cpu_s_per_1k_tokens'])} | {_num(r['rss_kb_per_call'])} | "
                f"{_triple(lag) if lag else 'inline'} | {r['peak_threads']} | "
                f"{r['driver_cpu_pct']:.0f} |")
    if "floor" in results and "voicesync" in results:
        lines += ["", "voicesync ÷ floor (same run):", "",
                  "| calls | turn.end → first chunk | interruption → end frame | interruption"
                  " → handler loop exit | CPU / 1k tokens | RSS / call |",
                  "|" + "---|" * 6]
        for floor, ours in zip(results["floor"], results["voicesync"], strict=True):
            lines.append(
                f"| {ours['calls']} | "
                + " | ".join(_ratios(ours[key], floor[key]) for key, _ in LATENCIES)
                + f" | {_ratio(ours['cpu_s_per_1k_tokens'], floor['cpu_s_per_1k_tokens'])} | "
                f"{_ratio(ours['rss_kb_per_call'], floor['rss_kb_per_call'])} |")
    return "\n".join(lines) + "\n"


def _at(results: list[Result], calls: int) -> Result | None:
    return next((r for r in results if r["calls"] == calls), None)


def goals(results: dict[str, list[Result]]) -> str:
    """The issue's goals, each with the measured figure and whether it is met."""
    ours = results["voicesync"]
    rows: list[tuple[str, str, bool | None]] = []
    r100, r500 = _at(ours, 100), _at(ours, 500)
    if r100:
        for key, label in LATENCIES[:2]:
            p99 = r100[key][1] if r100[key] else None
            rows.append((f"100 calls: {label} p99 ≤ 10 ms", f"{_num(p99)} ms",
                         p99 is not None and p99 <= 10))
        rows.append(("100 calls: 0 lost turns, 0 chunks after abort",
                     f"{r100['lost_turns']}, {r100['chunks_after_abort']}",
                     r100["lost_turns"] == 0 and r100["chunks_after_abort"] == 0))
    if r500:
        rows.append(("500 calls: 0 lost turns, 0 chunks after abort",
                     f"{r500['lost_turns']}, {r500['chunks_after_abort']}",
                     r500["lost_turns"] == 0 and r500["chunks_after_abort"] == 0))
        for key, label in (*LATENCIES, ("dispatch_lag_ms", "dispatch lag")):
            p99 = r500[key][1] if r500[key] else None
            rows.append((f"500 calls: {label} p99 ≤ 50 ms", f"{_num(p99)} ms",
                         p99 is not None and p99 <= 50))
        rows.append(("500 calls: RSS per call ≤ 64 KB", f"{_num(r500['rss_kb_per_call'])} KB",
                     r500["rss_kb_per_call"] <= 64))
    for calls in (1, 10):
        mine, floor = _at(ours, calls), _at(results["floor"], calls)
        if not (mine and floor):
            continue
        for key, label in LATENCIES[:2]:
            for index, name in ((0, "p50"), (1, "p99")):
                a, b = mine[key][index], floor[key][index]
                rows.append((f"{calls} calls: {label} {name} ≤ 1.5x floor",
                             f"{_num(a)} vs {_num(b)} ms ({_ratio(a, b)})", a <= 1.5 * b))
        a, b = mine["cpu_s_per_1k_tokens"], floor["cpu_s_per_1k_tokens"]
        rows.append((f"{calls} calls: CPU per token ≤ 1.5x floor",
                     f"{_num(a)} vs {_num(b)} s/1k ({_ratio(a, b)})", a <= 1.5 * b))
    lines = ["| goal | measured | met |", "|---|---|---|"]
    lines += [f"| {goal} | {value} | {'yes' if met else '**no**'} |" for goal, value, met in rows]
    return "\n".join(lines) + "\n"


def chart(results: dict[str, list[Result]], path: Path) -> None:
    """Latency percentiles against concurrent calls, one panel per figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(LATENCIES), figsize=(15, 4.6), sharey=True)
    styles = {"voicesync": ("-", "tab:blue"), "floor": ("--", "tab:gray")}
    for ax, (key, label) in zip(axes, LATENCIES, strict=True):
        for client, rows in results.items():
            line, color = styles.get(client, (":", "black"))
            have = [r for r in rows if r[key]]
            calls = [r["calls"] for r in have]
            for index, (name, marker) in enumerate((("p50", "o"), ("p99", "s"), ("max", "^"))):
                ax.plot(calls, [r[key][index] for r in have], line, marker=marker,
                        color=color, alpha=(1.0, 0.8, 0.4)[index], label=f"{client} {name}")
        for limit in (10, 50):
            ax.axhline(limit, color="tab:red", linewidth=0.8, linestyle=":")
        ax.set_xscale("log")
        ax.set_xticks([r["calls"] for r in results["voicesync"]],
                      [str(r["calls"]) for r in results["voicesync"]])
        ax.set_yscale("log")
        ax.set_title(label)
        ax.set_xlabel("concurrent calls")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("ms (driver clock)")
    axes[-1].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
