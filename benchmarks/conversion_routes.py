"""PyTorch -> OpenVINO IR by two routes, side by side: the module straight through OpenVINO's
PyTorch frontend (``ov.convert_model(module, example_input=...)``) and through ONNX
(``torch.onnx.export(dynamo=True)`` then ``ov.convert_model("model.onnx")``, attnseg's original route).

For each model and route, ``--repeats`` fresh subprocesses (routes alternating, so load drifts
hit both) each load the model, convert it once and report:

* conversion time (wall and CPU seconds of the route alone: the module in, an ``ov.Model`` out);
* peak memory: ``ru_maxrss`` of the process after the conversion, and its growth over the
  process after loading the model (what the conversion itself needed);
* parity: max |logit diff| of the converted IR (compiled on CPU in f32) against PyTorch on real
  Kvasir-SEG images.

The parent then compiles the IRs of the last repeat of both routes and times them alternately
(``--rounds`` rounds of ``--niter`` inferences each, f32 inference precision as attnseg's runtime
uses on this CPU): median latency per route.

    python benchmarks/conversion_routes.py --out benchmarks/results

Writes ``conversion_routes.json`` / ``.md``. Not a test; timings depend on machine load (recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODELS = {
    "shipped-w16": {"checkpoint": "zoo", "size": [256, 256],
                    "label": "shipped AttU_Net w16 256x256 (Kvasir)"},
    "attunet-w64": {"arch": "AttU_Net", "base_width": 64, "size": [256, 256],
                    "label": "AttU_Net w64 256x256 (reference width, random weights)"},
}


# ---------------------------------------------------------------------- child: one conversion


def child(spec: dict, route: str, out_xml: str, images: list[str]) -> dict:
    import resource

    import openvino as ov
    import torch

    from attnseg.export.to_onnx import export_onnx, wrap_for_export
    from attnseg.export.to_openvino import convert_onnx, convert_torch
    from attnseg.imaging import normalize, read_image, resize_image
    from attnseg.models import create_model, load_checkpoint
    from attnseg.zoo import default_checkpoint

    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    if spec.get("checkpoint") == "zoo":
        net, info = load_checkpoint(default_checkpoint())
        norm = info.normalization
    else:
        torch.manual_seed(0)
        net = create_model(spec["arch"], base_width=spec["base_width"]).eval()
        from attnseg.metadata import Normalization

        norm = Normalization()
    module = wrap_for_export(net, False)
    size = tuple(spec["size"])
    example = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        module(example)  # warm: lazy init must not count as conversion
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    t0, c0 = time.perf_counter(), time.process_time()
    if route == "torch":
        model = convert_torch(module, example, ["logits"])
    else:
        onnx_path = Path(out_xml).with_suffix(".onnx")
        export_onnx(module, example, onnx_path, ["logits"])
        model = convert_onnx(onnx_path)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    ov.save_model(model, out_xml, compress_to_fp16=False)

    compiled = ov.Core().compile_model(out_xml, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    diffs = []
    for path in images:
        x = normalize(resize_image(read_image(path), size), norm)[None]
        with torch.inference_mode():
            ref = module(torch.from_numpy(x)).numpy()
        got = compiled(x)[0]
        diffs.append(float(np.abs(ref - got).max()))
    return {"route": route, "seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": rss_after,
            "rss_before_mb": rss_before, "peak_growth_mb": rss_after - rss_before,
            "max_abs_diff": max(diffs), "parity_images": len(diffs), "ops": len(model.get_ordered_ops())}


# ---------------------------------------------------------------------- parent


def run_child(spec: dict, route: str, out_xml: Path, images: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, __file__, "--child", json.dumps({"spec": spec, "route": route, "xml": str(out_xml),
                                                            "images": images})]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({route}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def latency(xmls: dict[str, Path], rounds: int, niter: int) -> dict[str, dict]:
    import openvino as ov

    core = ov.Core()
    compiled = {r: core.compile_model(str(x), "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                      "PERFORMANCE_HINT": "LATENCY"}) for r, x in xmls.items()}
    shape = tuple(compiled[next(iter(compiled))].input(0).shape)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    times: dict[str, list[float]] = {r: [] for r in compiled}
    for c in compiled.values():
        c(x)  # warm-up
    for i in range(rounds):
        order = list(compiled) if i % 2 == 0 else list(reversed(compiled))
        for r in order:
            req = compiled[r].create_infer_request()
            for _ in range(niter):
                t = time.perf_counter()
                req.infer({0: x})
                times[r].append((time.perf_counter() - t) * 1000.0)
    return {r: {"median_ms": float(np.median(v)), "runs": len(v)} for r, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--niter", type=int, default=10)
    ap.add_argument("--images", default="src/attnseg/zoo/samples/kvasir/images", help="parity images")
    ap.add_argument("--parity-images", type=int, default=4)
    ap.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS),
                    help="which models (default: all)")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    if args.child:
        job = json.loads(args.child)
        print(json.dumps(child(job["spec"], job["route"], job["xml"], job["images"])))
        return

    from attnseg.benchmarking.machine import machine_info

    images = sorted(str(p) for p in Path(args.images).glob("*.jpg"))[: args.parity_images]
    report = {"command": "python benchmarks/conversion_routes.py " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(v) if isinstance(v, list) else v}"
        for k, v in vars(args).items() if v is not None and k != "child"),
        "machine_before": machine_info().to_dict(), "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            spec = MODELS[name]
            runs: dict[str, list[dict]] = {"torch": [], "onnx": []}
            xmls = {}
            for i in range(args.repeats):
                for route in (("torch", "onnx") if i % 2 == 0 else ("onnx", "torch")):
                    xml = Path(tmp) / f"{len(report['models'])}_{route}.xml"
                    runs[route].append(run_child(spec, route, xml, images))
                    xmls[route] = xml
                    print(name, route, {k: round(v, 3) if isinstance(v, float) else v
                                        for k, v in runs[route][-1].items()}, flush=True)
            lat = latency(xmls, args.rounds, args.niter)
            summary = {}
            for route, rs in runs.items():
                summary[route] = {
                    "seconds_median": float(np.median([r["seconds"] for r in rs])),
                    "cpu_seconds_median": float(np.median([r["cpu_seconds"] for r in rs])),
                    "peak_rss_mb_median": float(np.median([r["peak_rss_mb"] for r in rs])),
                    "peak_growth_mb_median": float(np.median([r["peak_growth_mb"] for r in rs])),
                    "max_abs_diff": float(max(r["max_abs_diff"] for r in rs)),
                    "ops": rs[-1]["ops"], "latency_median_ms": lat[route]["median_ms"],
                    "latency_runs": lat[route]["runs"],
                }
            report["models"][name] = {"spec": spec, "runs": runs, "summary": summary}
    report["machine_after"] = machine_info().to_dict()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "conversion_routes.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    write_markdown(report, out)


def write_markdown(report: dict, out: Path) -> None:
    m = report["machine_before"]
    lines = ["# PyTorch -> OpenVINO IR: direct (PyTorch frontend) vs via ONNX", "",
             f"`{report['command']}`", "",
             (f"CPU: {m['cpu_model']} ({', '.join(m['cpu_flags'])}), {m['usable_cores']} usable cores; load average "
             f"{m['load_average']} before, {report['machine_after']['load_average']} after (a shared machine). "
             f"torch {m['versions'].get('torch')}, openvino {m['versions'].get('openvino')}, "
             f"python {platform.python_version()}."), "",
             ("| model | route | conversion wall s | conversion CPU s | peak RSS MB | growth during conversion MB "
             "| max abs logit diff vs PyTorch | IR ops | latency median ms (f32) |"),
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, entry in report["models"].items():
        for route, s in entry["summary"].items():
            label = "torch (ov.convert_model(module))" if route == "torch" else "onnx (torch.onnx.export + convert)"
            lines.append(f"| {entry['spec'].get('label', name)} | {label} | {s['seconds_median']:.2f} | {s['cpu_seconds_median']:.2f} | "
                         f"{s['peak_rss_mb_median']:.0f} | {s['peak_growth_mb_median']:.0f} | "
                         f"{s['max_abs_diff']:.2e} | {s['ops']} | {s['latency_median_ms']:.2f} |")
    lines += ["", ("Medians over fresh subprocesses (routes alternating); latency from the two IRs timed "
              "alternately in one process. Conversion figures cover the route alone: `seg-export` also "
              "writes `model.onnx` on the torch route (for ONNX Runtime users), so its total time there "
              "includes the ONNX export as well.")]
    (out / "conversion_routes.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
