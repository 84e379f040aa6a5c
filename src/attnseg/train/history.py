"""Per-epoch metrics written as CSV, JSON and a PNG of the curves."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from attnseg.atomic import atomic_file


def write_history(rows: list[dict], out_dir: Path) -> None:
    """Rewrite ``history.csv`` / ``history.json`` / ``curves.png`` from all epochs so far."""
    if not rows:
        return
    keys = list(dict.fromkeys(k for row in rows for k in row))
    with atomic_file(out_dir / "history.csv") as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)
    with atomic_file(out_dir / "history.json") as tmp:
        tmp.write_text(json.dumps(rows, indent=2))
    plot_curves(rows, out_dir / "curves.png")


def _legend(ax) -> None:
    """A legend when the axes has labelled lines; a note instead of matplotlib's warning otherwise."""
    if ax.get_legend_handles_labels()[1]:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no validation during training", ha="center", va="center", transform=ax.transAxes)


def plot_curves(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("train_loss", "val_loss"):
        if key in rows[0]:
            ax1.plot(epochs, [r.get(key) for r in rows], label=key)
    ax1.set_xlabel("epoch")
    ax1.set_title("loss")
    _legend(ax1)
    for key in ("val_dice", "val_jaccard", "val_miou", "val_pixel_accuracy", "val_oa", "train_oa"):
        if key in rows[0]:
            ax2.plot(epochs, [r.get(key) for r in rows], label=key)
    ax2.set_xlabel("epoch")
    ax2.set_title("validation")
    _legend(ax2)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
