"""Live mode keeps end-to-end latency bounded when the model is slower than the video.

A real video is built from Kvasir-SEG frames (``--frames`` images of the data set, resized to
622x530, the data set's most common size, one image per frame, 30 fps, mp4v) and played at its
own frame rate, as a camera would deliver it, through:

* ``live``: ``seg-infer MODEL VIDEO --live --no-show -o OUT --json`` run as a command (latency
  hint, one request in flight, the newest frame wins; per-frame latencies from ``OUT/frames.json``);
* ``queued``: what an ordered stream does with a live feed: every captured frame waits in a
  capture queue and ``Segmenter.stream`` takes them in order (the same Segmenter, the same
  requests in flight).

Each runs with the shipped model (AttU_Net w16, FP32 IR) and with an artificially slowed one:
the same architecture twice as wide (``--slow-width``, default base_width 32, random weights;
~4x the compute), slower than the 30 fps video on this CPU. Reported per run: frames read / segmented / dropped, end-to-end
latency (frame delivered by the capture -> result ready) p50 / p95 / max, and its median over the
first and the last 20% of the segmented frames (bounded: about equal; queued: grows with time).

    python benchmarks/live_latency.py --out benchmarks/results

Writes ``live_latency.json`` / ``.md`` (and keeps the video and the IRs in ``--work``). Not a
test: it takes a few minutes. Timings depend on the machine and its load (both recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

SIZE = (622, 530)  # (W, H) of the video: Kvasir-SEG's most common image size
FPS = 30.0


def machine() -> dict:
    info = {"cpu": platform.processor() or "unknown", "cores": os.cpu_count()}
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    for line in lscpu.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Model name":
            info["cpu"] = value.strip()
    return info


def make_video(path: Path, frames: int, data: Path) -> Path:
    import cv2

    if path.is_file():
        return path
    images = sorted((data / "images").glob("*.jpg"))[:frames]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    for p in images:
        writer.write(cv2.resize(cv2.imread(str(p)), SIZE, interpolation=cv2.INTER_AREA))
    writer.release()
    return path


def export_models(work: Path, width: int) -> dict[str, Path]:
    from attnseg.export import AdvancedExportParameters, export
    from attnseg.zoo import default_checkpoint

    quick = AdvancedExportParameters(parity_batches=1)
    out = {}
    shipped = work / "shipped" / "model.xml"
    if not shipped.is_file():
        print("exporting the shipped model ...", flush=True)
        export(default_checkpoint(), output_dir=shipped.parent, force=True, advanced=quick)
    out["shipped AttU_Net w16"] = shipped
    wide = work / f"w{width}" / "model.xml"
    if not wide.is_file():
        import torch

        from attnseg.models import create_model, save_checkpoint

        print(f"exporting AttU_Net w{width} (random weights) ...", flush=True)
        torch.manual_seed(0)
        ckpt = save_checkpoint(work / f"w{width}.pt", create_model("AttU_Net", base_width=width).eval(),
                               input_size=(256, 256),
                               trained_with={"note": "random weights, seed 0: a slowed model for live_latency"})
        export(ckpt, output_dir=wide.parent, force=True, advanced=quick)
    out[f"AttU_Net w{width} (slowed)"] = wide
    return out


def drift(e2e: list[float]) -> dict:
    """Median end-to-end latency over the first and the last 20% of the segmented frames."""
    k = max(1, len(e2e) // 5)
    return {"first_20pct_p50": round(float(np.median(e2e[:k])), 1), "last_20pct_p50": round(float(np.median(e2e[-k:])), 1)}


def run_live_mode(xml: Path, video: Path, precision: str) -> dict:
    """``seg-infer MODEL VIDEO --live --no-show -o OUT --json``, as a user runs it."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "live"
        cmd = [sys.executable, "-m", "attnseg.cli.infer", str(xml), str(video), "--live", "--no-show", "-o", str(out),
               "--json", "--inference-precision", precision]
        summary = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        rows = json.loads((out / "frames.json").read_text())
    e2e = [r["end_to_end_ms"] for r in rows]
    return {**summary, **drift(e2e), "command": "seg-infer MODEL VIDEO --live --no-show -o OUT --json "
                                                f"--inference-precision {precision}"}


def run_queued(xml: Path, video: Path, precision: str, max_frames: int | None = None) -> dict:
    """Frames captured at the video's rate into an unbounded queue; an ordered stream drains it."""
    import cv2

    from attnseg.runtime import Segmenter
    from attnseg.runtime.live import percentiles

    seg = Segmenter(xml, hint="latency", inference_precision=precision)
    q: queue.Queue = queue.Queue()
    captured: dict[str, float] = {}

    def capture() -> None:
        cap = cv2.VideoCapture(str(video))
        t0, i = time.perf_counter(), 0
        while True:
            delay = t0 + i / FPS - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            ok, frame = cap.read()
            if not ok or (max_frames is not None and i >= max_frames):
                break
            name = f"frame_{i:06d}"
            captured[name] = time.perf_counter()
            q.put((name, frame))
            i += 1
        cap.release()
        q.put(None)

    def frames():
        while (item := q.get()) is not None:
            yield item

    t_start = time.perf_counter()
    threading.Thread(target=capture, daemon=True).start()
    e2e, max_queue = [], 0
    for r in seg.stream(frames(), max_in_flight=seg.num_requests, prefetch=0):
        e2e.append((time.perf_counter() - captured[r.source]) * 1e3)
        max_queue = max(max_queue, q.qsize())
    secs = time.perf_counter() - t_start
    return {"frames_read": len(captured), "frames_segmented": len(e2e), "frames_dropped": 0,
            "seconds": round(secs, 3), "segmented_fps": round(len(e2e) / secs, 3), "max_queue": max_queue,
            "inference_precision": seg.inference_precision,
            "latency_ms": {"end_to_end": percentiles(e2e)}, **drift(e2e)}


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# Live mode: bounded end-to-end latency (benchmarks/live_latency.py)", "",
        f"`{report['command']}`", "",
        (f"Video: {report['frames']} Kvasir-SEG frames at {SIZE[0]}x{SIZE[1]}, {FPS:.0f} fps "
        f"({report['frames'] / FPS:.0f} s; queued runs: the first {report['queued_frames']}), played at its own rate. CPU: {m['cpu']}, {m['cores']} cores, shared "
        f"(load average {report['load_average_start'][0]:.1f} at the start, {report['load_average_end'][0]:.1f} at "
        f"the end). Precision {report['precision']}, latency hint, one request in flight. End-to-end = frame "
        "delivered by the capture -> result ready."), "",
        ("| model | mode | read | segmented | dropped | segmented FPS | e2e p50 ms | e2e p95 ms | e2e max ms "
        "| p50 first 20% | p50 last 20% | infer p50 ms | wait p95 ms |"),
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["runs"]:
        e = r["latency_ms"]["end_to_end"]
        infer = f"{r['latency_ms']['infer']['p50']:.0f}" if "infer" in r["latency_ms"] else "-"
        wait = f"{r['latency_ms']['wait']['p95']:.0f}" if "wait" in r["latency_ms"] else "-"
        lines.append(f"| {r['model']} | {r['mode']} | {r['frames_read']} | {r['frames_segmented']} | "
                     f"{r['frames_dropped']} | {r['segmented_fps']:.1f} | {e['p50']:.0f} | {e['p95']:.0f} | "
                     f"{e['max']:.0f} | {r['first_20pct_p50']:.0f} | {r['last_20pct_p50']:.0f} | {infer} | {wait} |")
    lines += ["", ("`live` drops frames the model cannot keep up with and its latency stays about one inference "
              "plus the wait in the one-frame slot (a frame interval, 33 ms, plus scheduling on a loaded machine; the "
              "video's last frame, which no newer frame replaces, waits until the request is free) from the first "
              "to the last frames; `queued` (an ordered stream over a buffered feed) "
              "segments every frame, and when the model is slower than the video its latency grows for as long "
              "as the video runs. Wait = frame delivered by the capture -> inference starts."), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = Path(__file__).resolve().parent
    p.add_argument("--data", type=Path, default=here.parent.parent / "shared" / "data" / "kvasir-seg")
    p.add_argument("--frames", type=int, default=240, help="frames in the video (default 240: 8 s at 30 fps)")
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "attnseg-live-latency")
    p.add_argument("--out", type=Path, default=here / "results")
    p.add_argument("--precision", default="f32", help="inference precision of every run (default f32)")
    p.add_argument("--slow-width", type=int, default=32, help="base_width of the slowed model (default 32)")
    p.add_argument("--queued-frames", type=int, default=90,
                   help="frames the queued runs play (default 90: 3 s; its backlog takes long to drain)")
    p.add_argument("--modes", nargs="+", default=["live", "queued"], choices=["live", "queued"])
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    report = {"command": "python benchmarks/live_latency.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "machine": machine(), "load_average_start": list(os.getloadavg()), "frames": args.frames,
              "precision": args.precision, "queued_frames": args.queued_frames, "runs": []}
    video = make_video(args.work / f"kvasir_{args.frames}f_30fps.mp4", args.frames, args.data)
    for name, xml in export_models(args.work, args.slow_width).items():
        for mode in args.modes:
            print(f"{name}: {mode} ...", flush=True)
            run = (run_live_mode(xml, video, args.precision) if mode == "live"
                   else run_queued(xml, video, args.precision, args.queued_frames))
            run.update(model=name, mode=mode)
            report["runs"].append(run)
            e = run["latency_ms"]["end_to_end"]
            print(f"  read {run['frames_read']}, segmented {run['frames_segmented']}, dropped {run['frames_dropped']}, "
                  f"e2e p50 {e['p50']:.0f} ms p95 {e['p95']:.0f} ms max {e['max']:.0f} ms", flush=True)
    report["load_average_end"] = list(os.getloadavg())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "live_latency.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "live_latency.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
