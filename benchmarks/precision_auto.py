"""The runtime's measured defaults against OpenVINO's benchmark_app, in one interleaved run.

For the shipped Kvasir-SEG model's FP32 and INT8 IRs and an AttU_Net base_width 64 at 256x256
(random weights; latency does not depend on them):

* start-up: ``Segmenter(xml)`` with an empty per-user cache (the precision probe runs), again
  (the cached decision is read), and with the chosen precision given explicitly (no probe);
* latency: ``Segmenter.predict`` (``inference_precision="auto"``) median, on a real image already
  at the model size, vs benchmark_app ``-hint latency`` with its default configuration
  (target ratio <= 1.05);
* throughput: ``Segmenter(hint="throughput").stream()`` over real Kvasir-SEG JPEG files (decode
  included; with the default prefetch threads and without) vs benchmark_app ``-hint throughput``
  FPS (target ratio >= 0.90), and over decoded arrays and arrays at the model size, with the
  CPU time per image of each, to show what decoding and resizing cost;
* training: what ``--precision auto`` decides, five times from an empty cache, for the shipped
  architecture at its batch and size (the five should agree).

Each round runs benchmark_app and then attnseg on the same model, so both see the same load;
figures are medians over the rounds. Writes ``--out`` (.json and .md beside it).

    python benchmarks/precision_auto.py --out benchmarks/results/precision_auto.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from runtime_overhead import DEFAULT_IMAGES, benchmark_app, export_default


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "attnseg-precision-auto",
                   help="where the exported IRs go (reused when present)")
    p.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="real JPEG files (Kvasir-SEG)")
    p.add_argument("--stream-images", type=int, default=96, help="files per stream() pass")
    p.add_argument("--predict-iters", type=int, default=60, help="predict() calls per round")
    p.add_argument("--bench-seconds", type=int, default=10, help="benchmark_app -t per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--train-runs", type=int, default=5)
    p.add_argument("--models", default="fp32,int8,w64", help="subset of fp32,int8,w64")
    p.add_argument("--out", type=Path, default=HERE / "results" / "precision_auto.json")
    args = p.parse_args(argv)

    from attnseg.benchmarking.machine import machine_info
    from attnseg.imaging import list_images

    images = list_images(args.images)[: args.stream_images]
    info = machine_info()
    report: dict = {"command": "python " + " ".join([sys.argv[0], *(argv or sys.argv[1:])]),
                    "machine": {"cpu": info.cpu_model, "flags": info.cpu_flags, "cores": info.usable_cores},
                    "load_average_start": os.getloadavg(), "settings": {k: str(v) for k, v in vars(args).items()},
                    "models": {}}
    irs = prepare_models(args.work, [m for m in args.models.split(",") if m])
    for name, xml in irs.items():
        print(f"== {name}: {xml}", flush=True)
        entry = {"xml": str(xml), "startup": startup(xml)}
        entry["latency"] = latency_rounds(xml, images, args)
        entry["throughput"] = throughput_rounds(xml, images, args)
        report["models"][name] = entry
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")  # keep what is done if a later step fails
    if args.train_runs:
        report["training_auto"] = training_decisions(args.train_runs)
    report["load_average_end"] = os.getloadavg()
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    md = markdown(report)
    args.out.with_suffix(".md").write_text(md)
    print(md)
    return 0


def prepare_models(work: Path, wanted: list[str]) -> dict[str, Path]:
    from attnseg.zoo import default_checkpoint, sample_dir

    out: dict[str, Path] = {}
    fp32 = work / "shipped" / "model.xml"
    if ("fp32" in wanted or "int8" in wanted) and not fp32.is_file():
        from attnseg.export import AdvancedExportParameters, export

        print("exporting the shipped model ...", flush=True)
        export(default_checkpoint(), output_dir=fp32.parent, force=True,
               advanced=AdvancedExportParameters(parity_batches=1))
    if "fp32" in wanted:
        out["shipped FP32"] = fp32
    if "int8" in wanted:
        int8 = work / "shipped" / "model_int8.xml"
        if not int8.is_file():
            from attnseg.optimize import quantize

            print("quantizing the shipped model ...", flush=True)
            imgs = sample_dir() / "images"
            quantize(fp32, int8, calibration=imgs, subset_size=len(list(imgs.iterdir())), quiet=True, force=True)
        out["shipped INT8"] = int8
    if "w64" in wanted:
        out["AttU_Net w64 FP32"] = export_default(work)
    return out


def startup(xml: Path, repeats: int = 3) -> dict:
    """Seconds to construct a Segmenter: first start (probe), cached start, explicit precision."""
    from attnseg.runtime import Segmenter

    with tempfile.TemporaryDirectory() as cache:
        os.environ["ATTNSEG_CACHE_DIR"] = cache
        t = time.perf_counter()
        seg = Segmenter(xml)
        first = time.perf_counter() - t
        choice = seg.precision_choice.to_dict()
        del seg
        cached, plain = [], []
        for _ in range(repeats):  # interleaved, so both see the same load
            t = time.perf_counter()
            Segmenter(xml)
            cached.append(time.perf_counter() - t)
            t = time.perf_counter()
            Segmenter(xml, inference_precision=choice["precision"] or "default")
            plain.append(time.perf_counter() - t)
    os.environ.pop("ATTNSEG_CACHE_DIR")
    res = {"first_start_s": first, "cached_start_s": statistics.median(cached),
           "explicit_start_s": statistics.median(plain), "choice": choice}
    res["probe_cost_s"] = first - res["explicit_start_s"]
    res["cached_cost_s"] = res["cached_start_s"] - res["explicit_start_s"]
    print(f"start-up: first {first:.2f} s (probe {choice.get('probe_s')} s), cached {res['cached_start_s']:.2f} s, "
          f"explicit {res['explicit_start_s']:.2f} s; chose {choice['precision']} ({choice['reason']})", flush=True)
    return res


def latency_rounds(xml: Path, images: list[Path], args) -> dict:
    from attnseg.imaging import read_image, resize_image
    from attnseg.runtime import Segmenter

    seg = Segmenter(xml, hint="latency")
    at_size = resize_image(read_image(images[0]), seg.input_size)
    for _ in range(5):
        seg.predict(at_size)
    rounds = []
    for r in range(args.rounds):
        ba = benchmark_app(xml, "latency", args.bench_seconds, "CPU")
        totals, infers = [], []
        for _ in range(args.predict_iters):
            res = seg.predict(at_size)
            totals.append(res.timings.total)
            infers.append(res.timings.infer)
        rnd = {"benchmark_app_median_ms": ba["median_ms"], "predict_total_median_ms": statistics.median(totals),
               "predict_infer_median_ms": statistics.median(infers)}
        rnd["ratio"] = rnd["predict_total_median_ms"] / rnd["benchmark_app_median_ms"]
        rnd["infer_ratio"] = rnd["predict_infer_median_ms"] / rnd["benchmark_app_median_ms"]
        rounds.append(rnd)
        print(f"latency round {r + 1}: benchmark_app {rnd['benchmark_app_median_ms']:.2f} ms, predict "
              f"{rnd['predict_total_median_ms']:.2f} ms (infer {rnd['predict_infer_median_ms']:.2f}); "
              f"ratio {rnd['ratio']:.3f}", flush=True)
    return {"precision": seg.inference_precision, "rounds": rounds,
            **{k: statistics.median(r[k] for r in rounds) for k in rounds[0]}}


def throughput_rounds(xml: Path, images: list[Path], args) -> dict:
    """``stream()`` FPS against benchmark_app ``-hint throughput``, from JPEG files (the target)
    and, to show where the rest goes, from decoded arrays and from arrays already at the model
    size; with the process CPU time per image, since on a machine whose cores inference already
    fills, decoding and resizing can only take their CPU time from it."""
    from attnseg.imaging import read_image, resize_image
    from attnseg.runtime import Segmenter

    seg = Segmenter(xml, hint="throughput")
    decoded = [read_image(p) for p in images]
    at_size = [resize_image(a, seg.input_size) for a in decoded]
    list(seg.stream(images[: seg.num_requests * 4]))  # warm-up
    passes = (("stream", images, None), ("no_prefetch", images, 0), ("decoded", decoded, None),
              ("at_size", at_size, None))
    rounds = []
    for r in range(args.rounds):
        ba = benchmark_app(xml, "throughput", args.bench_seconds, "CPU")
        rnd = {"benchmark_app_fps": ba["fps"]}
        for label, items, workers in passes:
            t0, c0 = time.perf_counter(), time.process_time()
            n = sum(1 for _ in seg.stream(items, prefetch=workers))
            rnd[f"{label}_fps"] = n / (time.perf_counter() - t0)
            rnd[f"{label}_cpu_ms"] = (time.process_time() - c0) / n * 1e3
            rnd[f"{label}_ratio"] = rnd[f"{label}_fps"] / ba["fps"]
        rnd["ratio"] = rnd["stream_ratio"]
        rounds.append(rnd)
        print(f"throughput round {r + 1}: benchmark_app {ba['fps']:.1f} FPS; stream from files "
              f"{rnd['stream_fps']:.1f} FPS (ratio {rnd['ratio']:.3f}), no prefetch {rnd['no_prefetch_ratio']:.3f}, "
              f"decoded arrays {rnd['decoded_ratio']:.3f}, arrays at model size {rnd['at_size_ratio']:.3f}", flush=True)
    return {"precision": seg.inference_precision, "requests": seg.num_requests, "images": len(images),
            "stage_costs_ms": stage_costs(seg, images), "rounds": rounds,
            **{k: statistics.median(r[k] for r in rounds) for k in rounds[0]}}


def stage_costs(seg, images: list[Path]) -> dict:
    """Median CPU cost per image of what stream() does besides inference (one thread)."""
    from attnseg.imaging import read_image

    def median_ms(fn, items) -> float:
        times = []
        for x in items:
            t = time.perf_counter()
            fn(x)
            times.append((time.perf_counter() - t) * 1e3)
        return statistics.median(times)

    decoded = [read_image(p) for p in images]
    prepared = [seg.preprocess(a) for a in decoded]
    raw = [seg.infer(p) for p in prepared]
    return {"decode": median_ms(read_image, images), "resize_to_model": median_ms(seg.preprocess, decoded),
            "postprocess": median_ms(lambda i: seg.postprocess(prepared[i], raw[i]), range(len(raw))),
            "image_size": list(decoded[0].shape[:2])}


def training_decisions(runs: int) -> dict:
    """``--precision auto`` from an empty cache, ``runs`` times, for the shipped architecture."""
    from attnseg.models import load_checkpoint
    from attnseg.train.acceleration import choose_precision
    from attnseg.zoo import default_checkpoint

    model, info = load_checkpoint(default_checkpoint())
    model.train()
    trained = info.trained_with if isinstance(info.trained_with, dict) else {}
    batch = int(trained.get("config", {}).get("batch_size", 4))
    shape = (batch, info.in_channels, *info.input_size)
    out = []
    for i in range(runs):
        with tempfile.TemporaryDirectory() as cache:
            os.environ["ATTNSEG_CACHE_DIR"] = cache
            t = time.perf_counter()
            precision, why, medians = choose_precision("auto", model, shape)
            out.append({"choice": precision.value, "reason": why, "medians_ms": medians,
                        "seconds": time.perf_counter() - t})
        print(f"training auto run {i + 1}: {precision.value} ({why})", flush=True)
    os.environ.pop("ATTNSEG_CACHE_DIR", None)
    return {"input_shape": list(shape), "runs": out, "choices": [r["choice"] for r in out],
            "agree": len({r["choice"] for r in out}) == 1}


def markdown(rep: dict) -> str:
    m = rep["machine"]
    flags = ", ".join(f for f in m["flags"] if f in ("avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8",
                                                     "amx_tile", "avx512_fp16")) or "none"
    amx = "" if "amx_bf16" in m["flags"] else "; no AMX"
    load = (f"Load average at start {tuple(round(x, 1) for x in rep['load_average_start'])}, end "
            f"{tuple(round(x, 1) for x in rep.get('load_average_end', ()))}: the machine was shared "
            "(other jobs on the same 2 cores); medians of interleaved rounds.")
    header = ("| model | auto chose | first start s (probe) | cached start s | explicit start s "
              "| predict ms | benchmark_app latency ms | ratio (<= 1.05) "
              "| stream FPS | benchmark_app tput FPS | ratio (>= 0.90) |")
    lines = [f"# Measured defaults vs benchmark_app ({m['cpu']}, {m['cores']} cores; {flags}{amx})",
             "", f"`{rep['command']}`", "", load, "", header,
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, e in rep["models"].items():
        s, lat, tp = e["startup"], e["latency"], e["throughput"]
        lines.append(
            f"| {name} | {s['choice']['precision']} ({s['choice']['source']}) | {s['first_start_s']:.2f} "
            f"({s['choice'].get('probe_s') or 0:.2f}) | {s['cached_start_s']:.2f} | {s['explicit_start_s']:.2f} "
            f"| {lat['predict_total_median_ms']:.2f} | {lat['benchmark_app_median_ms']:.2f} | {lat['ratio']:.3f} "
            f"| {tp['stream_fps']:.1f} | {tp['benchmark_app_fps']:.1f} | {tp['ratio']:.3f} |")
    lines += ["", ("Where stream() throughput goes (ratio to benchmark_app `-hint throughput`, and process CPU "
                   "time per image; benchmark_app's own is 1000 x cores / FPS):"), "",
              ("| model | from files | files, no prefetch | decoded arrays | arrays at model size "
               "| benchmark_app CPU ms/img | decode ms | resize ms | postprocess ms |"),
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def cell(tp: dict, k: str) -> str:
        return f"{tp[k + '_ratio']:.3f} ({tp[k + '_cpu_ms']:.1f} ms)"

    for name, e in rep["models"].items():
        tp = e["throughput"]
        c = tp["stage_costs_ms"]
        lines.append(f"| {name} | {cell(tp, 'stream')} | {cell(tp, 'no_prefetch')} | {cell(tp, 'decoded')} "
                     f"| {cell(tp, 'at_size')} "
                     f"| {1000 * m['cores'] / tp['benchmark_app_fps']:.1f} | {c['decode']:.2f} "
                     f"| {c['resize_to_model']:.2f} | {c['postprocess']:.2f} |")
    tr = rep.get("training_auto")
    if tr:
        verdict = "agree" if tr["agree"] else "DISAGREE"
        lines += ["", (f"Training `--precision auto` for the shipped AttU_Net at {tr['input_shape']}, "
                       f"{len(tr['runs'])} runs from an empty cache: {', '.join(tr['choices'])} ({verdict}).")]
        for i, r in enumerate(tr["runs"], 1):
            lines.append(f"- run {i}: {r['reason']} ({r['seconds']:.1f} s)")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
