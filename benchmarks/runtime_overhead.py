"""What the runtime costs on top of the model: attnseg.runtime vs OpenVINO's benchmark_app.

Measured in one run, interleaved round by round so both tools see the same machine load:

* latency: ``Segmenter.predict()`` median (decoded Kvasir image in, mask at the image size out)
  vs benchmark_app ``-hint latency`` inference-only median on the same IR (target: within 5%);
* throughput: ``Segmenter(hint="throughput").stream()`` FPS over a folder of real Kvasir images
  (JPEG decoding included) vs benchmark_app ``-hint throughput`` FPS (target: >= 90%);
* ``import attnseg.runtime`` time in a fresh interpreter (target < 1 s);
* resident memory (VmRSS / VmHWM) of a process serving the FP32 IR, and the INT8 one.

Without ``--model`` an AttU_Net base_width 64 with random weights is exported at 256x256
(``attnseg.export``) and quantized to INT8 (``attnseg.optimize``) into ``--work``.

    python benchmarks/runtime_overhead.py --out runtime_overhead.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = REPO.parent / "shared" / "data" / "kvasir-seg" / "images"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, help="IR to measure (default: export AttU_Net 64 at 256x256)")
    p.add_argument("--int8-model", type=Path, help="INT8 IR for the memory figure (default: quantize --model)")
    p.add_argument("--no-int8", action="store_true", help="skip the INT8 model")
    p.add_argument("--memory-only", action="store_true", help="only the import time and RSS figures")
    p.add_argument("--work", type=Path, default=Path("runtime_overhead_work"), help="where exported models go")
    p.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="folder of real images (Kvasir-SEG)")
    p.add_argument("--stream-images", type=int, default=64, help="images per stream() pass")
    p.add_argument("--predict-iters", type=int, default=40, help="predict() calls per round")
    p.add_argument("--bench-seconds", type=int, default=20, help="benchmark_app -t per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--memory-images", type=int, default=20, help="predict() calls before reading RSS")
    p.add_argument("--calibration-size", type=int, default=64, help="INT8 calibration images")
    p.add_argument("--device", default="CPU")
    p.add_argument("--out", type=Path, default=Path("runtime_overhead.json"))
    args = p.parse_args(argv)

    from attnseg.imaging import list_images

    images = list_images(args.images)
    if not images:
        raise SystemExit(f"no images in {args.images}")
    report: dict = {"machine": machine(), "load_average_start": os.getloadavg(), "settings": {
        k: str(v) for k, v in vars(args).items()}}
    xml = args.model or export_default(args.work)
    report["model"] = str(xml)
    report["import_runtime_s"] = import_time()
    if not args.memory_only:
        report["latency"] = latency_rounds(xml, images, args)
        report["throughput"] = throughput_rounds(xml, images, args)
    report["memory"] = {"fp32": serving_memory(xml, images[: args.memory_images])}
    if not args.no_int8:
        int8 = args.int8_model or quantize_default(xml, args.images, args.calibration_size)
        report["memory"]["int8"] = serving_memory(int8, images[: args.memory_images])
        report["int8_model"] = str(int8)
    report["load_average_end"] = os.getloadavg()
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    summary(report)
    print(f"report: {args.out}")
    return 0


# ---------------------------------------------------------------------- models
def export_default(work: Path) -> Path:
    xml = work / "attunet64_256" / "model.xml"
    if xml.is_file():
        return xml
    import torch

    from attnseg.export import AdvancedExportParameters, export
    from attnseg.models import AttU_Net

    torch.manual_seed(0)
    net = AttU_Net(img_ch=3, output_ch=1, base_width=64).eval()
    print("exporting AttU_Net base_width 64 at 256x256 (random weights) ...", flush=True)
    return export(model=net, output_dir=xml.parent, input_size=(256, 256), classes=["polyp"], force=True,
                  advanced=AdvancedExportParameters(parity_batches=1)).xml_path


def quantize_default(xml: Path, images: Path, subset_size: int) -> Path:
    out = xml.with_name("model_int8.xml")
    if out.is_file():
        return out
    from attnseg.optimize import quantize

    print("quantizing to INT8 with NNCF ...", flush=True)
    return quantize(xml, out, calibration=images, subset_size=subset_size, quiet=True, force=True).output_xml


# ---------------------------------------------------------------------- benchmark_app
def benchmark_app(xml: Path, hint: str, seconds: int, device: str) -> dict[str, float]:
    exe = Path(sys.executable).parent / "benchmark_app"
    cmd = [str(exe), "-m", str(xml), "-d", device, "-hint", hint, "-t", str(seconds)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    nums = {}
    for key, pattern in (("median_ms", r"Median:\s+([\d.]+) ms"), ("average_ms", r"Average:\s+([\d.]+) ms"),
                         ("fps", r"Throughput:\s+([\d.]+) FPS"), ("count", r"Count:\s+(\d+) iterations")):
        m = re.search(pattern, out)
        if m:
            nums[key] = float(m.group(1))
    return nums


# ---------------------------------------------------------------------- runtime figures
def latency_rounds(xml: Path, images: list[Path], args) -> dict:
    from attnseg.imaging import read_image, resize_image
    from attnseg.runtime import Segmenter

    seg = Segmenter(xml, device=args.device, hint="latency")
    real = read_image(images[0])
    at_size = resize_image(real, seg.input_size)
    for _ in range(5):
        seg.predict(real)
    rounds = []
    for r in range(args.rounds):
        ba = benchmark_app(xml, "latency", args.bench_seconds, args.device)
        totals, infers, around, exact = [], [], [], []
        for _ in range(args.predict_iters):
            res = seg.predict(real)
            totals.append(res.timings.total)
            infers.append(res.timings.infer)
            around.append(res.timings.total - res.timings.infer)
            exact.append(seg.predict(at_size).timings.total)
        rnd = {
            "benchmark_app_median_ms": ba.get("median_ms"),
            "predict_total_median_ms": statistics.median(totals),
            "predict_infer_median_ms": statistics.median(infers),
            "predict_pre_post_median_ms": statistics.median(around),
            "predict_at_model_size_median_ms": statistics.median(exact),
            "image_size": list(real.shape[:2]),
        }
        rnd["ratio"] = rnd["predict_total_median_ms"] / rnd["benchmark_app_median_ms"]
        rounds.append(rnd)
        print(f"latency round {r + 1}: benchmark_app {rnd['benchmark_app_median_ms']:.2f} ms, "
              f"predict {rnd['predict_total_median_ms']:.2f} ms (ratio {rnd['ratio']:.3f})", flush=True)
    return {"rounds": rounds,
            "benchmark_app_median_ms": statistics.median(r["benchmark_app_median_ms"] for r in rounds),
            "predict_total_median_ms": statistics.median(r["predict_total_median_ms"] for r in rounds),
            "predict_pre_post_median_ms": statistics.median(r["predict_pre_post_median_ms"] for r in rounds),
            "ratio_median": statistics.median(r["ratio"] for r in rounds)}


def throughput_rounds(xml: Path, images: list[Path], args) -> dict:
    from attnseg.runtime import Segmenter

    seg = Segmenter(xml, device=args.device, hint="throughput")
    batch = images[: args.stream_images]
    list(seg.stream(batch[: seg.num_requests * 2]))  # warm-up
    rounds = []
    for r in range(args.rounds):
        ba = benchmark_app(xml, "throughput", args.bench_seconds, args.device)
        t0 = time.perf_counter()
        n = sum(1 for _ in seg.stream(batch))
        fps = n / (time.perf_counter() - t0)
        rnd = {"benchmark_app_fps": ba.get("fps"), "stream_fps": fps, "images": n,
               "requests_in_flight": seg.num_requests}
        rnd["ratio"] = fps / rnd["benchmark_app_fps"]
        rounds.append(rnd)
        print(f"throughput round {r + 1}: benchmark_app {rnd['benchmark_app_fps']:.2f} FPS, "
              f"stream {fps:.2f} FPS (ratio {rnd['ratio']:.3f})", flush=True)
    return {"rounds": rounds,
            "benchmark_app_fps": statistics.median(r["benchmark_app_fps"] for r in rounds),
            "stream_fps": statistics.median(r["stream_fps"] for r in rounds),
            "ratio_median": statistics.median(r["ratio"] for r in rounds)}


def import_time(repeats: int = 5) -> dict:
    """Wall and CPU seconds of ``import attnseg.runtime`` in fresh interpreters (CPU time does
    not grow when other processes compete for the cores; wall time does)."""
    code = ("import time; t, c = time.perf_counter(), time.process_time(); import attnseg.runtime; "
            "print(time.perf_counter() - t, time.process_time() - c)")
    runs = [[float(v) for v in subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                              check=True).stdout.split()] for _ in range(repeats)]
    return {"median_s": statistics.median(r[0] for r in runs),
            "median_cpu_s": statistics.median(r[1] for r in runs), "all_s": runs}


def serving_memory(xml: Path, images: list[Path]) -> dict:
    code = textwrap.dedent(
        """
        import json, sys
        def status():
            f = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
            return {k: int(f[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM")}
        import attnseg.runtime
        after_import = status()
        seg = attnseg.runtime.Segmenter(sys.argv[1])
        after_load = status()
        for p in sys.argv[2:]:
            seg.predict(p)
        print(json.dumps({"after_import_mb": after_import["VmRSS"], "after_load_mb": after_load["VmRSS"],
                          "serving_rss_mb": status()["VmRSS"], "peak_rss_mb": status()["VmHWM"],
                          "torch_loaded": "torch" in sys.modules}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code, str(xml), *map(str, images)], capture_output=True,
                         text=True, check=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    res["model_bin_mb"] = Path(xml).with_suffix(".bin").stat().st_size / 2**20
    return res


def machine() -> dict:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import openvino

    return {"cpu": cpu, "cores": os.cpu_count(), "openvino": openvino.__version__, "python": sys.version.split()[0]}


def summary(rep: dict) -> None:
    if "latency" in rep:
        lat, tp = rep["latency"], rep["throughput"]
        print(f"\npredict() median {lat['predict_total_median_ms']:.2f} ms vs benchmark_app "
              f"{lat['benchmark_app_median_ms']:.2f} ms: ratio {lat['ratio_median']:.3f} (target <= 1.05); "
              f"pre+post-processing median {lat['predict_pre_post_median_ms']:.2f} ms")
        print(f"stream() {tp['stream_fps']:.2f} FPS vs benchmark_app {tp['benchmark_app_fps']:.2f} FPS: "
              f"ratio {tp['ratio_median']:.3f} (target >= 0.90)")
    imp = rep["import_runtime_s"]
    print(f"import attnseg.runtime: {imp['median_s']:.3f} s wall, {imp['median_cpu_s']:.3f} s CPU")
    for name, mem in rep["memory"].items():
        print(f"RSS serving {name}: {mem['serving_rss_mb']:.0f} MB (peak {mem['peak_rss_mb']:.0f} MB, "
              f"weights {mem['model_bin_mb']:.0f} MB)")
    print(f"load average start {rep['load_average_start']}, end {rep['load_average_end']}")


if __name__ == "__main__":
    raise SystemExit(main())
