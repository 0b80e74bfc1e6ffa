"""PNG charts for the report (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after use("Agg"): the backend must be chosen first

COLORS = {
    "runstop": "#1f77b4",
    "baseline": "#d62728",
    "api": "#1f77b4",
    "raw": "#7f7f7f",
    "handler": "#1f77b4",
    "bare": "#7f7f7f",
}


def storm_latency(storm: dict[str, Any], path: Path) -> Path:
    """Latency distribution (ECDF, log scale) of every storm scenario, both designs."""
    fig, axes = plt.subplots(1, len(storm), figsize=(6 * len(storm), 4.2), squeeze=False)
    for ax, (name, scenario) in zip(axes[0], storm.items(), strict=True):
        for design, entry in scenario["designs"].items():
            lat = sorted(entry["latencies_ms"])
            if not lat:
                continue
            ys = [(i + 1) / len(lat) for i in range(len(lat))]
            ax.step(lat, ys, where="post", label=design, color=COLORS.get(design))
        ax.set_xscale("log")
        ax.set_xlabel("latency per cancel (ms, log scale)")
        ax.set_ylabel("fraction of cancels")
        ax.set_title(f"{name} duplicate cancels, {scenario['concurrency']} clients")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def storm_answers(storm: dict[str, Any], path: Path) -> Path:
    """What each design answered in the storms (stacked: interrupted, already_interrupted, 409)."""
    labels: list[str] = []
    stacks: dict[str, list[int]] = {"interrupted": [], "already_interrupted": [], "409": []}
    for name, scenario in storm.items():
        for design, entry in scenario["designs"].items():
            labels.append(f"{design}\n{name}")
            for key in stacks:
                stacks[key].append(entry["answers"].get(key, 0))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(labels)), 4))
    bottom = [0] * len(labels)
    colors = {"interrupted": "#2ca02c", "already_interrupted": "#1f77b4", "409": "#d62728"}
    for key, values in stacks.items():
        ax.bar(labels, values, bottom=bottom, label=key, color=colors[key])
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("answers (all repeats)")
    ax.set_title("Storm answers: every 409 is spurious (no run had finished)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def requests_per_cancel(rows: dict[str, Any], outcomes: tuple[str, ...], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 3.8))
    width = 0.38
    for offset, design in ((-width / 2, "runstop"), (width / 2, "baseline")):
        values = [max(rows[design][o]["requests"]) for o in outcomes]
        xs = [i + offset for i in range(len(outcomes))]
        ax.bar(xs, values, width, label=design, color=COLORS[design])
    ax.set_xticks(range(len(outcomes)), list(outcomes))
    ax.set_ylabel("DynamoDB requests per cancel")
    ax.set_title("Requests per cancel, counted at the wire")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def cold_start(cold: dict[str, Any], path: Path) -> Path:
    """Box plot of init (+ first invocation) per candidate, in ms."""
    names = list(cold["candidates"])
    data = [[s["total_s"] * 1000 for s in cold["candidates"][n]["samples"]] for n in names]
    init = [[s["init_s"] * 1000 for s in cold["candidates"][n]["samples"]] for n in names]
    fig, ax = plt.subplots(figsize=(max(7, 1.5 * len(names)), 4.2))
    positions = list(range(len(names)))
    ax.boxplot(init, positions=[p - 0.18 for p in positions], widths=0.3, patch_artist=True, showfliers=False)
    parts = ax.boxplot(data, positions=[p + 0.18 for p in positions], widths=0.3, patch_artist=True, showfliers=False)
    for box in parts["boxes"]:
        box.set_facecolor("#9ecae1")
    ax.set_xticks(positions, [n.replace("Function", "") for n in names])
    ax.set_ylabel("ms (in-process wall clock)")
    ax.set_title("Cold init: import + client (left), + first invocation (right)")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def bars(title: str, ylabel: str, series: dict[str, list[float]], path: Path) -> Path:
    """Median bars with min-max whiskers."""
    import statistics

    names = list(series)
    medians = [statistics.median(v) if v else 0.0 for v in series.values()]
    low = [m - min(v) if v else 0.0 for m, v in zip(medians, series.values(), strict=True)]
    high = [max(v) - m if v else 0.0 for m, v in zip(medians, series.values(), strict=True)]
    fig, ax = plt.subplots(figsize=(max(6, 2.2 * len(names)), 3.8))
    colors = [COLORS.get(n.split()[0], "#1f77b4") for n in names]
    ax.bar(names, medians, yerr=[low, high], capsize=6, color=colors)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
