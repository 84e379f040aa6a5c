#!/usr/bin/env python
"""Load test seg-serve on loopback and compare it with in-process Segmenter.stream() in the same run.

    python benchmarks/serve_load.py --model attnseg-export-XXXX/model_int8.xml
    python benchmarks/serve_load.py            # makes the shipped INT8 model first (seg-export -o DIR)

16 concurrent clients (threads, each a RemoteSegmenter, one keep-alive connection each) post
real Kvasir-SEG JPEGs (mask output only) to ``seg-serve --hint throughput`` on 127.0.0.1. The
requests run in blocks of ``--block`` requests; in-process ``Segmenter.stream()`` (same IR,
device, hint and images, paths in, so it decodes the JPEGs too) runs ``--stream-images``
images at the start, the middle and the end, so both sides see the same machine load. Reported:
throughput (median over blocks), p50/p99 latency over all requests, errors, the ratio of the
median throughputs, and the server's RSS after warm-up, 1,000 and every block up to the end.
Writes ``benchmarks/results/serve_load.json`` and ``.md``. Client and server share the CPU on
loopback: the client's own work (HTTP, decoding the mask) is part of the server's figure.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "kvasir-seg" / "images"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_int8(out: Path) -> Path:
    """The shipped model through the main job (export + NNCF INT8), once."""
    xml = out / "model_int8.xml"
    if not xml.is_file():
        exe = Path(sys.executable).with_name("seg-export")
        subprocess.run([str(exe), "--device", "CPU", "-o", str(out), "--niter", "10", "-q"], check=True)
    return xml


def start_server(model: Path, name: str, log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    exe = Path(sys.executable).with_name("seg-serve")
    cmd = [str(exe), str(model), "--name", name, "--host", "127.0.0.1", "--http-port", str(port), "--no-grpc",
           "--device", "CPU", "--hint", "throughput", "--log-level", "WARNING"]
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    from attnseg.runtime import RemoteSegmenter

    probe = RemoteSegmenter(f"http://127.0.0.1:{port}", name)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"seg-serve exited: {log.read_text()[-2000:]}")
        if probe.ready():
            return proc, port
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("seg-serve did not become ready in 300 s")


def run_block(url: str, name: str, images: list[Path], start: int, count: int, clients: int,
              latencies: list[float]) -> tuple[float, int]:
    """``count`` requests by ``clients`` threads; returns (images/s, errors)."""
    from attnseg.runtime import RemoteSegmenter

    lock = threading.Lock()
    next_index = [start]
    end = start + count
    errors = [0]

    def client() -> None:
        remote = RemoteSegmenter(url, name)
        own: list[float] = []
        while True:
            with lock:
                i = next_index[0]
                if i >= end:
                    break
                next_index[0] += 1
            t0 = time.perf_counter()
            try:
                remote.predict(images[i % len(images)])
                own.append((time.perf_counter() - t0) * 1e3)
            except Exception:  # noqa: BLE001 - counted, the load goes on
                with lock:
                    errors[0] += 1
        remote.close()
        with lock:
            latencies.extend(own)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return count / (time.perf_counter() - t0), errors[0]


def run_stream(seg, images: list[Path], start: int, count: int) -> float:
    items = [images[(start + i) % len(images)] for i in range(count)]
    t0 = time.perf_counter()
    n = sum(1 for _ in seg.stream(items))
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, help="IR to serve (default: the shipped INT8 model, made once)")
    p.add_argument("--workdir", type=Path, default=REPO / "benchmark-results" / "serve_load")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--block", type=int, default=1_000)
    p.add_argument("--stream-images", type=int, default=300)
    p.add_argument("--warmup", type=int, default=64)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "serve_load")
    args = p.parse_args(argv)

    import psutil

    from attnseg.benchmarks.machine import machine_info
    from attnseg.runtime import Segmenter

    args.workdir.mkdir(parents=True, exist_ok=True)
    model = args.model or make_int8(args.workdir / "export")
    images = sorted(DATA.glob("*.jpg"))
    if not images:
        raise SystemExit(f"no Kvasir-SEG images in {DATA}")
    machine = machine_info()
    name = "kvasir"
    proc, port = start_server(model, name, args.workdir / "server.log")
    url = f"http://127.0.0.1:{port}"
    server = psutil.Process(proc.pid)
    seg = Segmenter(model, device="CPU", hint="throughput")
    state = {"latencies": [], "blocks": [], "streams": [], "rss": {}, "done": 0}
    try:
        run_block(url, name, images, 0, args.warmup, args.clients, [])
        run_stream(seg, images, 0, min(args.warmup, args.stream_images))
        state["rss"]["after_warmup"] = server.memory_info().rss
        n_blocks = max(1, args.requests // args.block)
        stream_points = {0, n_blocks // 2, n_blocks}
        for b in range(n_blocks + 1):
            if b in stream_points:
                fps = run_stream(seg, images, state["done"], args.stream_images)
                state["streams"].append({"before_block": b, "images_per_s": fps})
                print(f"stream: {fps:.2f} img/s", flush=True)
            if b == n_blocks:
                break
            fps, errs = run_block(url, name, images, state["done"], args.block, args.clients, state["latencies"])
            state["done"] += args.block
            rss = server.memory_info().rss
            state["rss"][str(state["done"])] = rss
            state["blocks"].append({"requests": args.block, "images_per_s": fps, "errors": errs, "rss_bytes": rss})
            print(f"block {b + 1}/{n_blocks}: {fps:.2f} img/s, errors {errs}, server RSS {rss / 2**20:.1f} MiB",
                  flush=True)
            write_report(args, model, machine, seg, state, complete=False)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    report = write_report(args, model, machine, seg, state, complete=True)
    return 0 if report["errors"] == 0 else 1


def write_report(args, model: Path, machine, seg, state: dict, complete: bool) -> dict:
    """JSON + Markdown from what has run so far (rewritten after every block)."""
    blocks, streams, rss, done = state["blocks"], state["streams"], state["rss"], state["done"]
    serve_fps = float(np.median([b["images_per_s"] for b in blocks]))
    stream_fps = float(np.median([s["images_per_s"] for s in streams]))
    lat = np.asarray(state["latencies"])
    first, last = str(min(done, args.block)), str(done)
    report = {
        "command": "python benchmarks/serve_load.py" + ("" if args.model is None else f" --model {args.model}"),
        "complete": complete, "model": str(model), "clients": args.clients, "requests": done,
        "block": args.block, "stream_images_per_run": args.stream_images,
        "server_images_per_s_median": serve_fps,
        "stream_images_per_s_median": stream_fps,
        "ratio_server_to_stream": serve_fps / stream_fps,
        "latency_ms_p50": float(np.percentile(lat, 50)), "latency_ms_p99": float(np.percentile(lat, 99)),
        "errors": int(sum(b["errors"] for b in blocks)),
        "server_rss_mib": {k: v / 2**20 for k, v in rss.items()},
        "blocks": blocks, "streams": streams,
        "segmenter": {"num_requests": seg.num_requests, "inference_precision": seg.inference_precision},
        "machine": machine.to_dict(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    md = [
        "# seg-serve under load (loopback)" + ("" if complete else " (PARTIAL: run still going or stopped)"), "",
        f"`{report['command']}`", "",
        *[f"- {line}" for line in machine.summary_lines()],
        (f"- Model: `{Path(model).name}` ({seg.inference_precision} compute, {seg.num_requests} infer requests, "
         "hint throughput), real Kvasir-SEG JPEGs, mask output"), "",
        "| figure | value |", "| --- | ---: |",
        f"| clients | {args.clients} |",
        f"| requests | {done:,} |",
        f"| server throughput (median of {len(blocks)} blocks of {args.block:,}) | {serve_fps:.2f} images/s |",
        f"| in-process `Segmenter.stream()` (median of {len(streams)} runs) | {stream_fps:.2f} images/s |",
        f"| ratio server / in-process | **{serve_fps / stream_fps:.2f}** |",
        f"| latency p50 / p99 | {report['latency_ms_p50']:.1f} / {report['latency_ms_p99']:.1f} ms |",
        f"| errors | {report['errors']} |",
        (f"| server RSS after warm-up / {int(first):,} / {done:,} requests | "
         f"{rss['after_warmup'] / 2**20:.1f} / {rss[first] / 2**20:.1f} / {rss[last] / 2**20:.1f} MiB |"),
        "",
    ]
    args.out.with_suffix(".md").write_text("\n".join(md))
    if complete:
        print("\n".join(md))
    return report


if __name__ == "__main__":
    raise SystemExit(main())
