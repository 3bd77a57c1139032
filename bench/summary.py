"""Turn one run's driver and agent records into the figures of the results table."""

from __future__ import annotations

import math
from typing import Any

from workload import TOKENS, Workload

MS = 1e6  # nanoseconds per millisecond


def percentiles(samples: list[float]) -> list[float] | None:
    """[p50, p99, max] by nearest rank, or None without samples."""
    if not samples:
        return None
    data = sorted(samples)
    rank = [data[max(0, math.ceil(q * len(data)) - 1)] for q in (0.50, 0.99)]
    return [*rank, data[-1]]


QUANTILES = (0.10, 0.25, 0.50, 0.75, 0.90, 0.95, 0.99, 0.999)


def quantiles(samples: list[float]) -> dict[str, Any]:
    """A compact stand-in for the raw samples: count, nearest-rank quantiles and max, in ms."""
    if not samples:
        return {"n": 0}
    data = sorted(samples)
    ranks = {f"p{100 * q:g}": round(data[max(0, math.ceil(q * len(data)) - 1)], 3)
             for q in QUANTILES}
    return {"n": len(data), **ranks, "max": round(data[-1], 3)}


def summarize(workload: Workload, driver: dict[str, Any], agent: dict[str, Any]) -> dict[str, Any]:
    """Figures of one (client, calls) run; `samples_ms` (raw, for --raw) is popped before saving."""
    turns = driver["turns"]
    exits: dict[str, int] = agent["loop_exit_ns"]
    ttfc = [(t["first_ns"] - t["sent_ns"]) / MS for t in turns if t["first_ns"]]
    cut = [t for t in turns if t["interrupt_ns"]]
    to_end = [(t["end_ns"] - t["interrupt_ns"]) / MS for t in cut if t["end_ns"]]
    to_exit = [(exits[t["message_id"]] - t["interrupt_ns"]) / MS for t in cut
               if t["message_id"] in exits]
    expected = workload.calls * workload.turns
    lost = expected - len(turns) + sum(1 for t in turns if _lost(t))
    tokens = agent["tokens"]
    lag = agent.get("dispatch_lag_ms")
    frames = driver["frames_in"]
    return {
        "mode": workload.mode,
        "calls": workload.calls,
        "turns": len(turns),
        "interruptions": len(cut),
        "ttfc_ms": percentiles(ttfc),
        "interrupt_to_end_ms": percentiles(to_end),
        "interrupt_to_loop_exit_ms": percentiles(to_exit),
        "chunks_after_abort": sum(t["after_abort"] + t["after_end"] for t in turns),
        "chunks_in_flight": sum(t["in_flight"] for t in turns),
        "lost_turns": lost,
        "stray_frames": driver["strays"],
        "tokens": tokens,
        "tokens_per_s": tokens / driver["wall_s"] if driver["wall_s"] else 0.0,
        "cpu_s_per_1k_tokens": 1000 * agent["cpu_s"] / tokens if tokens else None,
        # Every frame the agent sent, as the driver counted it (the same count for both).
        "frames": frames,
        "cpu_us_per_frame": 1e6 * agent["cpu_s"] / frames if frames else None,
        "switches_per_frame": agent["switches"] / frames if frames else None,
        "rss_kb_per_call": (agent["rss_peak"] - agent["rss_base"]) / 1024 / workload.calls,
        "dispatch_lag_ms": lag,
        "peak_threads": agent["peak_threads"],
        "dropped_events": agent["dropped_events"],
        "agent_finished": agent["finished"],
        "driver_cpu_pct": 100 * driver["cpu_s"] / driver["wall_s"] if driver["wall_s"] else 0.0,
        "driver_loop_lag_p99_ms": driver["loop_lag_p99_ms"],
        "quantiles_ms": {"ttfc": quantiles(ttfc), "interrupt_to_end": quantiles(to_end),
                         "interrupt_to_loop_exit": quantiles(to_exit)},
        "samples_ms": {"ttfc": _round(ttfc), "interrupt_to_end": _round(to_end),
                       "interrupt_to_loop_exit": _round(to_exit)},
    }


def _lost(turn: dict[str, Any]) -> bool:
    """No end frame in time, or an uninterrupted reply that ended short of TOKENS chunks."""
    if not turn["end_ns"] or not turn["message_id"]:
        return True
    return not turn["interrupt_ns"] and turn["chunks"] != TOKENS


def _round(samples: list[float]) -> list[float]:
    return [round(value, 2) for value in samples]
