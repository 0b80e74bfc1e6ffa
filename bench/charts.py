"""PNG charts for the report (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after use("Agg"): the backend must be chosen first

COLORS = {
    "runstop": "#1f77b4",
    "read_first": "#2ca02c",
    "seed_fix": "#ff7f0e",
    "pre_fix": "#d62728",
    "runstop_no_fallback": "#9467bd",
    "handler": "#1f77b4",
    "bare": "#7f7f7f",
}


def storm_latency(storm: dict[str, Any], path: Path) -> Path:
    """Latency distribution (ECDF, log scale) of every storm scenario, every design."""
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
    stacks: dict[str, list[int]] = {"interrupted": [], "already_interrupted": [], "409": [], "503": []}
    for name, scenario in storm.items():
        for design, entry in scenario["designs"].items():
            labels.append(f"{design}\n{name}")
            for key in stacks:
                stacks[key].append(entry["answers"].get(key, 0))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(labels)), 4))
    bottom = [0] * len(labels)
    colors = {"interrupted": "#2ca02c", "already_interrupted": "#1f77b4", "409": "#d62728", "503": "#7f7f7f"}
    for key, values in stacks.items():
        ax.bar(labels, values, bottom=bottom, label=key, color=colors[key])
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("answers (all repeats)")
    ax.set_title("Storm answers: every 409 is spurious (no run had finished)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def per_cancel(rows: dict[str, Any], outcomes: tuple[str, ...], path: Path) -> Path:
    """Requests and capacity units (read + write) per cancel, per outcome and design."""
    designs = list(rows)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    width = 0.8 / len(designs)
    for ax, (title, keys) in zip(
        axes,
        (("DynamoDB requests per cancel", ("requests",)), ("capacity units per cancel", ("read_units", "write_units"))),
        strict=True,
    ):
        for i, design in enumerate(designs):
            values = [sum(statistics.median(rows[design][o][k] or [0]) for k in keys) for o in outcomes]
            xs = [j - 0.4 + width * (i + 0.5) for j in range(len(outcomes))]
            ax.bar(xs, values, width, label=design, color=COLORS.get(design))
        ax.set_xticks(range(len(outcomes)), list(outcomes))
        ax.set_title(f"{title}, counted at the wire")
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def hot_run(hot: dict[str, Any], path: Path) -> Path:
    """The hot run: latency (ECDF, log scale) and 503s per configuration."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [2, 1]})
    names = list(hot["configs"])
    for name in names:
        lat = sorted(hot["configs"][name]["latencies_ms"])
        ys = [(i + 1) / len(lat) for i in range(len(lat))]
        if lat:
            left.step(lat, ys, where="post", label=name, color=COLORS.get(name))
    left.set_xscale("log")
    left.set_xlabel("latency per cancel (ms, log scale)")
    left.set_ylabel("fraction of cancels")
    left.set_title(f"{hot['rate_per_s']:g} cancels/s on one run, cap {hot['write_units_per_s']:g} writes/s")
    left.grid(True, which="both", alpha=0.3)
    left.legend()
    share = [sum(hot["configs"][n]["503"]) / max(1, hot["cancels"] * hot["repeats"]) * 100 for n in names]
    right.bar(names, share, color=[COLORS.get(n, "#1f77b4") for n in names])
    right.set_ylabel("% of cancels answered 503")
    right.set_title("503 after the SDK's retries")
    right.tick_params(axis="x", labelrotation=20)
    right.grid(True, axis="y", alpha=0.3)
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
