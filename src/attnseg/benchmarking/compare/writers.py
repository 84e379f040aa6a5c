"""Compare reports: console table, Markdown, CSV, JSON and one self-contained HTML file."""

from __future__ import annotations

import csv
import html
import json
from pathlib import Path
from typing import Any

from attnseg.atomic import atomic_file
from attnseg.benchmarking.compare.result import BackendResult, CompareResult
from attnseg.benchmarking.stats import LatencyStats

FILES = {"markdown": "compare.md", "csv": "compare.csv", "json": "compare.json", "html": "compare.html"}
CSV_FIELDS = [
    "backend", "label", "status", "weights", "compute", "threads", "count", "median_ms", "avg_ms", "min_ms",
    "max_ms", "p90_ms", "p99_ms", "std_ms", "cpu_median_ms", "speedup", "first_inference_ms", "prepare_s", "accuracy_metric",
    "accuracy", "mask_agreement", "max_abs_diff", "model_size_mb", "note",
]


def _fmt(v: Any, spec: str = ".1f", none: str = "-") -> str:
    return none if v is None else format(v, spec)


def _acc(b: BackendResult) -> str:
    return _fmt(b.accuracy["value"], ".4f") if b.accuracy else "-"


def table_rows(result: CompareResult) -> tuple[list[str], list[list[str]]]:
    """Header and rows shared by the console, Markdown and HTML tables."""
    acc_name = {"dice": "Dice", "miou": "mIoU"}.get(result.accuracy_metric or "", None)
    header = ["Backend", "Weights", "Compute", "Median ms", "p90 ms", "Mean ms", "CPU ms", "Speedup"]
    if acc_name:
        header.append(acc_name)
    header += ["Mask agree %", "Prepare s", "Status"]
    rows = []
    for b in result.backends:
        lat = b.latency
        row = [b.label, b.weights or "-", b.compute or "-",
               _fmt(lat.median_ms if lat else None), _fmt(lat.p90_ms if lat else None),
               _fmt(lat.avg_ms if lat else None),
               _fmt(LatencyStats.from_samples(b.cpu_ms).median_ms if b.cpu_ms else None),
               _fmt(b.speedup, ".2f") + ("x" if b.speedup else "")]
        if acc_name:
            row.append(_acc(b))
        row += [_fmt(100 * b.mask_agreement if b.mask_agreement is not None else None, ".2f"),
                _fmt(b.prepare_s, ".1f"), b.status if b.status == "ok" else f"{b.status}: {b.note}"]
        rows.append(row)
    return header, rows


def _settings_lines(result: CompareResult) -> list[str]:
    width = result.arch_kwargs.get("base_width")
    lines = [
        f"Model: {result.arch}" + (f" (base_width {width})" if width else "") + f", checkpoint {result.checkpoint}",
        f"Input: {'x'.join(str(v) for v in result.input_shape)} float32, batch 1; task {result.task}",
        (f"Timing: {result.rounds} alternating rounds x {result.iters_per_round} inferences per backend "
        f"({result.rounds * result.iters_per_round} samples each) after {result.warmup} warm-up calls; "
        f"baseline {result.baseline}"),
    ]
    if result.data:
        lines.append(f"Accuracy: {result.accuracy_metric} on {result.accuracy_images} images of {result.data} "
                     "(at the model input size)")
    lines += result.machine.summary_lines()
    lines.append(f"Load average at end: {' '.join(f'{v:.2f}' for v in result.load_average_end) or 'n/a'}")
    if result.cpu_share is not None:
        lines.append(f"CPU share while timing: {100 * result.cpu_share:.0f}% of {result.machine.usable_cores} cores "
                     "(CPU ms = process CPU time per inference; wall-clock figures are only comparable "
                     "with other runs at a similar share)")
    return lines


def format_table(result: CompareResult) -> str:
    """A fixed-width console table with the settings above it."""
    header, rows = table_rows(result)
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) if i in (0, 1, 2, len(cells) - 1) else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    out = _settings_lines(result) + ["", line(header), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    out += [f"Note: {n}" for n in result.notes]
    return "\n".join(out)


def to_markdown(result: CompareResult) -> str:
    header, rows = table_rows(result)
    esc = lambda s: s.replace("|", "\\|")
    md = ["# seg-benchmark compare", ""]
    md += [f"- {esc(line)}" for line in _settings_lines(result)]
    md += ["", "| " + " | ".join(header) + " |", "|" + "|".join("---" if i < 3 or i == len(header) - 1 else "---:"
                                                         for i in range(len(header))) + "|"]
    md += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    if result.notes:
        md += [""] + [f"Note: {n}" for n in result.notes]
    if result.command:
        md += ["", "Reproduce:", "", "```", result.command, "```"]
    return "\n".join(md) + "\n"


def csv_rows(result: CompareResult) -> list[dict[str, Any]]:
    rows = []
    for b in result.backends:
        lat = b.latency.to_dict() if b.latency else {}
        rows.append({
            "backend": b.name, "label": b.label, "status": b.status, "weights": b.weights, "compute": b.compute,
            "threads": b.threads, **{k: lat.get(k) for k in ("count", "median_ms", "avg_ms", "min_ms", "max_ms",
                                                               "p90_ms", "p99_ms", "std_ms")},
            "cpu_median_ms": LatencyStats.from_samples(b.cpu_ms).median_ms if b.cpu_ms else None,
            "speedup": b.speedup, "first_inference_ms": b.first_inference_ms, "prepare_s": b.prepare_s,
            "accuracy_metric": b.accuracy["metric"] if b.accuracy else None,
            "accuracy": b.accuracy["value"] if b.accuracy else None,
            "mask_agreement": b.mask_agreement, "max_abs_diff": b.max_abs_diff, "model_size_mb": b.model_size_mb,
            "note": b.note,
        })
    return rows


def _write_text(path: Path, text: str) -> Path:
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _write_csv(path: Path, result: CompareResult) -> Path:
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        for row in csv_rows(result):
            w.writerow({k: "" if v is None else v for k, v in row.items()})
    return path


def to_html(result: CompareResult, plots: dict[str, str]) -> str:
    """One file, no external resources: the plots are base64 PNGs."""
    header, rows = table_rows(result)
    e = html.escape
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>seg-benchmark compare</title>",
        ("<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child"
        "{text-align:left}img{max-width:100%}.note{color:#555}</style></head><body>"),
        "<h1>seg-benchmark compare</h1><ul>",
        *[f"<li>{e(line)}</li>" for line in _settings_lines(result)],
        "</ul><table><tr>", *[f"<th>{e(h)}</th>" for h in header], "</tr>",
    ]
    for r in rows:
        parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>")
    parts.append("</table>")
    parts += [f"<p class='note'>Note: {e(n)}</p>" for n in result.notes]
    titles = {"latency": "Latency distribution per backend", "speedup": f"Speedup over {result.baseline}",
              "accuracy": "Accuracy vs latency"}
    for key, title in titles.items():
        parts.append(f"<h2>{e(title)}</h2>")
        if key in plots:
            parts.append(f"<img alt='{e(title)}' src='data:image/png;base64,{plots[key]}'>")
        else:
            parts.append("<p class='note'>" + ("Run with --data to measure accuracy." if key == "accuracy"
                                               else "matplotlib is not installed; no plot.") + "</p>")
    if result.command:
        parts.append(f"<h2>Reproduce</h2><pre>{e(result.command)}</pre>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_compare_reports(result: CompareResult, folder: str | Path) -> dict[str, Path]:
    """compare.md / .csv / .json / .html in ``folder``; returns kind -> path."""
    from attnseg.benchmarking.compare.plots import make_plots

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": _write_text(folder / FILES["markdown"], to_markdown(result)),
        "csv": _write_csv(folder / FILES["csv"], result),
        "json": _write_text(folder / FILES["json"], json.dumps(result.to_dict(), indent=2, default=str) + "\n"),
    }
    paths["html"] = _write_text(folder / FILES["html"], to_html(result, make_plots(result)))
    return paths
