"""The optimization report as a console table, Markdown and JSON (one set of rows for all three)."""

from __future__ import annotations

import json
from pathlib import Path

from attnseg.optimize.result import OptimizeResult

MB = 1024.0 * 1024.0


def _fmt_ratio(r: float | None) -> str:
    return "" if r is None else f"x{r:.2f}"


def rows(result: OptimizeResult) -> list[tuple[str, str, str, str]]:
    """(quantity, FP32 IR, optimized IR, change) rows shared by the console and Markdown tables."""
    after = result.precision.upper()
    out: list[tuple[str, str, str, str]] = [("", "FP32 IR", after, "change")]
    s = result.size
    out.append(("model size (MB)", f"{s.before_bytes / MB:.2f}", f"{s.after_bytes / MB:.2f}", _fmt_ratio(s.ratio)))
    a = result.accuracy
    if a is not None:
        name = "Dice" if a.metric == "dice" else "mIoU"
        out.append((f"{name} ({a.count} images, {a.inference_precision})", f"{a.before:.4f}", f"{a.after:.4f}",
                    f"{-100.0 * a.drop:+.2f} pt"))
    lat = result.latency
    if lat is not None:
        base, opt = lat.models.get("fp32"), lat.models.get("optimized")
        if base and opt:
            out.append((_latency_label(lat.device, base.inference_precision, opt.inference_precision),
                        f"{base.median_ms:.2f}", f"{opt.median_ms:.2f}",
                        _fmt_ratio(lat.ratio("optimized", "fp32"))))
        forced = lat.models.get("fp32_f32")
        if forced and opt:
            out.append(("latency median (ms), FP32 IR forced to f32", f"{forced.median_ms:.2f}", f"{opt.median_ms:.2f}",
                        _fmt_ratio(lat.ratio("optimized", "fp32_f32"))))
    return out


def _latency_label(device: str, before: str, after: str) -> str:
    """E.g. "median latency, ms (CPU, batch 1; OpenVINO computed in bf16 for both models)"."""
    compute = (f"OpenVINO computed in {before} for both models" if before == after
               else f"OpenVINO computed in {before} before, {after} after")
    return f"median latency, ms ({device}, batch 1; {compute})"


def details(result: OptimizeResult) -> list[str]:
    """Lines under the table: what was done, with what, and anything to worry about."""
    lines = [f"output: {result.output_xml}"]
    if result.exported_from:
        lines.append(f"exported from checkpoint: {result.exported_from} -> {result.source_xml}")
    st = result.settings
    if result.precision.startswith("int8"):
        lines.append(f"NNCF preset {st.get('preset')}, fast bias correction {st.get('fast_bias_correction')}, "
                     f"target device {st.get('target_device')}, {result.quantizers} FakeQuantize ops")
    c = result.calibration
    if c is not None:
        extra = f", {len(c.skipped)} unreadable skipped" if c.skipped else ""
        split = f" (split {c.split})" if c.split else ""
        lines.append(f"calibration: {c.used} of {c.found} images from {c.source}{split}, {c.resized} resized to "
                     f"{c.input_size[0]}x{c.input_size[1]}{extra}; model input {c.model_input}")
    ig = result.ignored
    if ig is not None:
        if ig.nodes:
            what = ", ".join(filter(None, [
                f"types {ig.types}" if ig.types else "", f"names {ig.names}" if ig.names else "",
                "attention gates (Sigmoid + Multiply)" if ig.gates else ""]))
            lines.append(f"ignored: {what}: {len(ig.nodes)} nodes kept in floating point")
        else:
            lines.append("ignored: nothing (every quantizable operation is INT8)")
    a = result.accuracy
    if a is not None:
        lines.append(f"validation: {a.data}")
        if a.max_drop is not None:
            verdict = "met" if a.met else "NOT met"
            lines.append(f"accuracy budget: max drop {a.max_drop:.4f} ({100 * a.max_drop:.2f} pt) {verdict}: "
                         f"reached {a.drop:.4f} ({100 * a.drop:.2f} pt)")
        ac = a.accuracy_control
        if ac:
            lines.append(f"accuracy control: {ac.get('reverted_quantizers', 0)} of {ac.get('quantizers_full', 0)} "
                         f"quantizers reverted to floating point; kept the {ac.get('kept')} model "
                         f"(fully quantized {a.metric} {ac.get('full_int8_metric', float('nan')):.4f})")
    lat = result.latency
    if lat is not None:
        lines.append(f"latency: {lat.runs} interleaved sync runs per model after {lat.warmup} warm-up, "
                     f"hint {lat.hint}, load average {lat.loadavg}")
        lines.extend(f"note: {n}" for n in lat.notes)
    t = result.timings
    if t:
        lines.append("time: " + ", ".join(f"{k.removesuffix('_s')} {v:.1f} s" for k, v in t.items()))
    lines.extend(f"warning: {w}" for w in result.warnings)
    return lines


def console_table(result: OptimizeResult) -> str:
    """Aligned plain-text table + details, for the terminal."""
    table = rows(result)
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    out = []
    for k, r in enumerate(table):
        out.append("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths))))
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out + [""] + details(result))


def markdown(result: OptimizeResult) -> str:
    table = rows(result)
    head = f"# {result.output_xml.name}: {result.precision.upper()} optimization report\n"
    md = ["| " + " | ".join(table[0]) + " |", "| --- | ---: | ---: | ---: |"]
    md += ["| " + " | ".join(r) + " |" for r in table[1:]]
    return "\n".join([head, *md, "", *(f"- {line}" for line in details(result))]) + "\n"


def write_reports(result: OptimizeResult, json_path: Path, md_path: Path) -> None:
    json_path.write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
    md_path.write_text(markdown(result), encoding="utf-8")
