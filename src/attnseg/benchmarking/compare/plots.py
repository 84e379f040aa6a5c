"""The three compare plots as base64 PNGs (matplotlib, imported here only)."""

from __future__ import annotations

import base64
import io
import logging

from attnseg.benchmarking.compare.result import CompareResult

log = logging.getLogger(__name__)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _log_if_wide(ax, values: list[float]) -> None:
    """Log scale when the values span more than 20x, so the fast backends stay readable."""
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > 20:
        from matplotlib.ticker import LogLocator, ScalarFormatter

        ax.set_xscale("log")
        # one plain label per decade: the default minor-tick labels (2x10^1, 3x10^1, ...) overlap
        ax.xaxis.set_major_locator(LogLocator(base=10))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(lambda *_: "")


def make_plots(result: CompareResult) -> dict[str, str]:
    """{"latency", "speedup", "accuracy"} -> base64 PNG; empty when matplotlib is missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        log.warning("matplotlib is not installed: the HTML report has no plots (pip install attnseg[benchmarks]).")
        return {}
    ok = [b for b in result.backends if b.ok]
    if not ok:
        return {}
    plots = {}
    labels = [b.label for b in ok]

    fig = Figure(figsize=(8, 0.5 * len(ok) + 1.5))
    ax = fig.add_subplot()
    ax.boxplot([b.samples_ms for b in ok], orientation="horizontal", tick_labels=labels, showfliers=True)
    for i, b in enumerate(ok, start=1):
        ax.plot(b.samples_ms, [i] * len(b.samples_ms), "o", alpha=0.3, markersize=3, color="tab:blue")
    ax.set_xlabel("latency per inference (ms)")
    _log_if_wide(ax, [v for b in ok for v in b.samples_ms])
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    plots["latency"] = _png(fig)

    fig = Figure(figsize=(8, 0.5 * len(ok) + 1.5))
    ax = fig.add_subplot()
    speedups = [b.speedup or 0.0 for b in ok]
    bars = ax.barh(labels, speedups, color=["tab:gray" if b.name == result.baseline else "tab:green" for b in ok])
    ax.bar_label(bars, labels=[f"{s:.2f}x" for s in speedups], padding=3)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel(f"speedup over {result.baseline} (median latency)")
    ax.invert_yaxis()
    plots["speedup"] = _png(fig)

    scored = [b for b in ok if b.accuracy]
    if scored:
        fig = Figure(figsize=(7, 4.5))
        ax = fig.add_subplot()
        markers = "osD^vP*X"
        for i, b in enumerate(scored):
            ax.scatter(b.latency.median_ms, b.accuracy["value"], s=50, marker=markers[i % len(markers)],
                       label=b.label, alpha=0.8)
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
        _log_if_wide(ax, [b.latency.median_ms for b in scored])
        ax.set_xlabel("median latency (ms)")
        ax.set_ylabel({"dice": "Dice", "miou": "mIoU"}.get(result.accuracy_metric or "", "accuracy"))
        ax.grid(alpha=0.3)
        plots["accuracy"] = _png(fig)
    return plots
