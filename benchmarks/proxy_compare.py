"""Is a candidate model better than the shipped one on every proxy? Compares the per-image Dice
of two ``benchmarks/resize_policies.py`` reports (same images, same seed: the rows are paired)
and writes the comparison the ship decision and the model card use.

For each condition: mean Dice of both, the difference with a paired bootstrap 95% interval
(resampling images), near-miss rates (Dice < 0.1) and empty-prediction rates. The verdict is
"better on every proxy" only if no row's mean Dice is lower.

    python benchmarks/proxy_compare.py shipped=benchmarks/results/resize_policies_endoscope/resize_policies.json#previous \\
        new=runs/proxies_new/resize_policies.json --out runs/proxy_compare
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

BOOTSTRAP = 2000


def load_model(spec: str) -> tuple[str, dict, dict]:
    """``label=report.json[#model]`` -> (label, that model's conditions, the report)."""
    label, sep, rest = spec.partition("=")
    if not sep:
        raise SystemExit(f"name each report: label=report.json[#model], got {spec!r}")
    path, _, name = rest.partition("#")
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
        models = report["models"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SystemExit(f"{path} is not a benchmarks/resize_policies.py report: {e}") from None
    if not name:
        if len(models) != 1:
            raise SystemExit(f"{path} holds {', '.join(models)}: say which with #name")
        name = next(iter(models))
    if name not in models:
        raise SystemExit(f"{path} has no model {name!r}; it has {', '.join(models)}")
    return label, models[name]["conditions"], report


def paired_interval(old: np.ndarray, new: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval of mean(new - old) over images."""
    diff = new - old
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(BOOTSTRAP, len(diff)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def compare(old: dict, new: dict) -> list[dict]:
    rows = []
    for name, a in old.items():
        b = new.get(name)
        if b is None:
            continue
        x, y = np.asarray(a["per_image_dice"]), np.asarray(b["per_image_dice"])
        if len(x) != len(y):
            raise SystemExit(f"condition {name!r} scored {len(x)} and {len(y)} images: not the same test set")
        lo, hi = paired_interval(x, y)
        rows.append({"condition": name, "old": float(x.mean()), "new": float(y.mean()),
                     "delta": float(y.mean() - x.mean()), "interval": [lo, hi],
                     "old_near_miss": a["near_miss_rate"], "new_near_miss": b["near_miss_rate"],
                     "old_empty": a.get("empty_rate"), "new_empty": b.get("empty_rate")})
    return rows


def table(rows: list[dict], old_label: str, new_label: str) -> list[str]:
    lines = [(f"| condition | {old_label} Dice | {new_label} Dice | difference (95% interval) | near-miss "
              f"{old_label} -> {new_label} | nothing found {old_label} -> {new_label} |"),
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        mark = "**" if r["delta"] > 0 else ""
        empty = ("-" if r["old_empty"] is None else f"{r['old_empty']:.0%} -> {r['new_empty']:.0%}")
        lines.append(f"| {r['condition']} | {r['old']:.3f} | {mark}{r['new']:.3f}{mark} | {r['delta']:+.3f} "
                     f"({r['interval'][0]:+.3f}, {r['interval'][1]:+.3f}) | {r['old_near_miss']:.0%} -> "
                     f"{r['new_near_miss']:.0%} | {empty} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("old", help="label=resize_policies.json[#model]: the model to beat")
    p.add_argument("new", help="label=resize_policies.json[#model]: the candidate")
    p.add_argument("--out", type=Path, help="folder for proxy_compare.md and .json (the card's --robustness)")
    args = p.parse_args(argv)
    old_label, old, old_report = load_model(args.old)
    new_label, new, new_report = load_model(args.new)
    if (old_report.get("images"), old_report.get("seed"), old_report.get("split")) != (
            new_report.get("images"), new_report.get("seed"), new_report.get("split")):
        raise SystemExit("the two reports scored different images or draws (images, seed, split differ)")
    rows = compare(old, new)
    worse = [r["condition"] for r in rows if r["delta"] < 0]
    verdict = (f"{new_label} is better than {old_label} on every proxy ({len(rows)} rows)" if not worse else
               f"{new_label} is lower than {old_label} on {len(worse)} of {len(rows)} rows: {', '.join(worse)}")
    command = " ".join(["python", "benchmarks/proxy_compare.py", *(sys.argv[1:] if argv is None else argv)])
    lines = table(rows, old_label, new_label)
    notes = [verdict + ".", "",
             (f"Mean Dice on the {new_report.get('images')} test images per condition, the paired difference with a "
              f"bootstrap 95% interval over images, near-miss rate (Dice < {new_report.get('near_miss_below', 0.1)}) and "
              "the share of images where nothing was found."), "",
             f"Scores: `{old_report.get('command', '?')}` and `{new_report.get('command', '?')}`; "
             + "; ".join(new_report.get("machine", []))]
    print("\n".join([*lines, "", *notes]))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        doc = {"command": f"`{command}`", "table": lines, "notes": notes, "rows": rows, "verdict": verdict,
               "worse": worse}
        (args.out / "proxy_compare.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        (args.out / "proxy_compare.md").write_text("\n".join([f"`{command}`", "", *lines, "", *notes]) + "\n",
                                                   encoding="utf-8")
    return 0 if not worse else 1


if __name__ == "__main__":
    raise SystemExit(main())
