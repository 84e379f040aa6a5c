#!/usr/bin/env python
"""seg-serve over HTTP and gRPC against in-process Segmenter.stream(), interleaved, at 16 clients.

    python benchmarks/serve_load.py --model DIR/model_int8.xml
    python benchmarks/serve_load.py            # makes the shipped INT8 model first (seg-export -o DIR)

One ``seg-serve --hint throughput`` on 127.0.0.1 (REST and gRPC). Each round runs three things
one after the other, in a rotating order so no side always goes first: ``--clients`` threads
posting real Kvasir-SEG JPEGs over REST (BYTES [1], the mask asked for as binary, http.client
keep-alive connections with TCP_NODELAY, bodies built before timing), the same over gRPC (kserve's stubs,
``raw_input_contents``), and in-process ``Segmenter.stream()`` on the same images (same IR,
device and hint; paths in, so it decodes the JPEGs too). Each run is ``--per-run`` images.
Reported: the median throughput of each side over the rounds, the median of the per-round
ratios (each round's server run against that round's stream run), p50/p99 latency, errors, the
server's RSS, and the CPU (model name and flags, load average before and after). Client and
server share the CPU on loopback: the clients' own work is part of the server's figure.
Writes ``benchmarks/results/serve_load.json`` and ``.md`` after every round.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
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
KINDS = ("stream", "http", "grpc")


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


def start_server(model: Path, name: str, log: Path) -> tuple[subprocess.Popen, int, int]:
    http_port, grpc_port = free_port(), free_port()
    exe = Path(sys.executable).with_name("seg-serve")
    cmd = [str(exe), str(model), "--name", name, "--host", "127.0.0.1", "--http-port", str(http_port),
           "--grpc-port", str(grpc_port), "--device", "CPU", "--hint", "throughput", "--log-level", "WARNING"]
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"seg-serve exited: {log.read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=5)
            conn.request("GET", "/v2/health/ready")
            if conn.getresponse().status == 200:
                return proc, http_port, grpc_port
        except OSError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("seg-serve did not become ready in 300 s")


def http_bodies(images: list[Path]) -> list[tuple[bytes, dict[str, str]]]:
    from attnseg.runtime import v2

    out = []
    for p in images:
        body, n = v2.encode_request([("image", "BYTES", [1], v2.pack_bytes([p.read_bytes()]))], ["mask"])
        out.append((body, {"Content-Type": "application/octet-stream", v2.BINARY_HEADER: str(n)}))
    return out


def grpc_requests(images: list[Path], name: str) -> list:
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

    from attnseg.runtime import v2

    out = []
    for p in images:
        req = pb.ModelInferRequest(model_name=name)
        req.inputs.add(name="image", datatype="BYTES", shape=[1])
        req.outputs.add(name="mask")
        req.raw_input_contents.append(v2.pack_bytes([p.read_bytes()]))
        out.append(req)
    return out


def run_clients(kind: str, port: int, name: str, payloads: list, start: int, count: int, clients: int,
                latencies: list[float]) -> tuple[float, int]:
    """``count`` requests by ``clients`` threads (one connection / channel each); (images/s, errors)."""
    lock = threading.Lock()
    next_index = [start]
    errors = [0]
    end = start + count

    def client() -> None:
        own: list[float] = []
        if kind == "http":
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            conn.connect()  # TCP_NODELAY, as urllib3/requests, curl and RemoteSegmenter set it
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def one(i: int) -> bool:
                body, headers = payloads[i % len(payloads)]
                conn.request("POST", f"/v2/models/{name}/infer", body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
                return r.status == 200 and len(data) > 0
        else:
            import grpc
            from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

            channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", -1)])
            stub = pb_grpc.GRPCInferenceServiceStub(channel)

            def one(i: int) -> bool:
                resp = stub.ModelInfer(payloads[i % len(payloads)], timeout=600)
                return len(resp.raw_output_contents) == 1
        while True:
            with lock:
                i = next_index[0]
                if i >= end:
                    break
                next_index[0] += 1
            t0 = time.perf_counter()
            try:
                ok = one(i)
            except Exception:  # noqa: BLE001 - counted, the load goes on
                ok = False
            if ok:
                own.append((time.perf_counter() - t0) * 1e3)
            else:
                with lock:
                    errors[0] += 1
        if kind == "http":
            conn.close()
        else:
            channel.close()
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
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--per-run", type=int, default=160, help="images per run (each side, each round)")
    p.add_argument("--warmup", type=int, default=32)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "serve_load")
    args = p.parse_args(argv)

    import psutil

    from attnseg.benchmarking.machine import machine_info
    from attnseg.runtime import Segmenter

    args.workdir.mkdir(parents=True, exist_ok=True)
    model = args.model or make_int8(args.workdir / "export")
    images = sorted(DATA.glob("*.jpg"))
    if not images:
        raise SystemExit(f"no Kvasir-SEG images in {DATA}")
    machine = machine_info()
    name = "kvasir"
    proc, http_port, grpc_port = start_server(model, name, args.workdir / "server.log")
    server = psutil.Process(proc.pid)
    seg = Segmenter(model, device="CPU", hint="throughput")
    payloads = {"http": http_bodies(images), "grpc": grpc_requests(images, name)}
    ports = {"http": http_port, "grpc": grpc_port}
    state: dict = {"runs": [], "latencies": {"http": [], "grpc": []}, "rss": {}, "done": 0,
                   "load_start": os.getloadavg()}
    try:
        for kind in ("http", "grpc"):
            run_clients(kind, ports[kind], name, payloads[kind], 0, args.warmup, args.clients, [])
        run_stream(seg, images, 0, args.warmup)
        state["rss"]["after_warmup"] = server.memory_info().rss
        for r in range(args.rounds):
            order = KINDS[r % 3:] + KINDS[:r % 3]
            for kind in order:
                start = state["done"]
                if kind == "stream":
                    fps, errs = run_stream(seg, images, start, args.per_run), 0
                else:
                    fps, errs = run_clients(kind, ports[kind], name, payloads[kind], start, args.per_run,
                                            args.clients, state["latencies"][kind])
                rss = server.memory_info().rss
                state["runs"].append({"round": r, "kind": kind, "images": args.per_run, "images_per_s": fps,
                                      "errors": errs, "server_rss_bytes": rss})
                print(f"round {r + 1}/{args.rounds} {kind:6s}: {fps:.2f} img/s, errors {errs}, "
                      f"server RSS {rss / 2**20:.0f} MiB", flush=True)
            state["done"] += args.per_run
            state["load_end"] = os.getloadavg()
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
    """JSON + Markdown from what has run so far (rewritten after every round)."""
    runs = state["runs"]
    fps = {k: [x["images_per_s"] for x in runs if x["kind"] == k] for k in KINDS}
    med = {k: float(np.median(v)) if v else float("nan") for k, v in fps.items()}
    rounds = sorted({x["round"] for x in runs})
    paired = {k: [] for k in ("http", "grpc")}
    for r in rounds:
        by = {x["kind"]: x["images_per_s"] for x in runs if x["round"] == r}
        for k, values in paired.items():
            if k in by and "stream" in by:
                values.append(by[k] / by["stream"])
    lat = {k: np.asarray(v) for k, v in state["latencies"].items()}
    rss = [x["server_rss_bytes"] for x in runs]
    report = {
        "command": "python benchmarks/serve_load.py" + ("" if args.model is None else f" --model {args.model}")
                   + f" --rounds {args.rounds} --per-run {args.per_run} --clients {args.clients}",
        "complete": complete, "model": str(model), "clients": args.clients, "rounds": len(rounds),
        "images_per_run": args.per_run,
        "images_per_s_median": med,
        "ratio_of_medians": {k: med[k] / med["stream"] for k in ("http", "grpc")},
        "ratio_per_round": paired,
        "ratio_per_round_median": {k: float(np.median(v)) if v else float("nan") for k, v in paired.items()},
        "latency_ms_p50": {k: float(np.percentile(v, 50)) if v.size else None for k, v in lat.items()},
        "latency_ms_p99": {k: float(np.percentile(v, 99)) if v.size else None for k, v in lat.items()},
        "errors": int(sum(x["errors"] for x in runs)),
        "requests": int(sum(x["images"] for x in runs if x["kind"] != "stream")),
        "server_rss_mib": {"after_warmup": state["rss"].get("after_warmup", 0) / 2**20,
                           "max": max(rss, default=0) / 2**20, "last": (rss[-1] if rss else 0) / 2**20},
        "load_average_start": list(state["load_start"]), "load_average_end": list(state.get("load_end", ())),
        "runs": runs,
        "segmenter": {"num_requests": seg.num_requests, "inference_precision": seg.inference_precision},
        "machine": machine.to_dict(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    le = state.get("load_end", ())
    md = [
        "# seg-serve under load: HTTP and gRPC against in-process stream() (loopback, interleaved)"
        + ("" if complete else " (PARTIAL: run still going or stopped)"), "",
        f"`{report['command']}`", "",
        *[f"- {line}" for line in machine.summary_lines()],
        f"- Load average (1/5/15 min) at the end: {' '.join(f'{x:.2f}' for x in le)}" if le else "",
        (f"- Model: `{Path(model).name}` ({seg.inference_precision} compute, {seg.num_requests} infer requests, "
         "hint throughput), real Kvasir-SEG JPEGs posted as BYTES, mask output (binary)"),
        (f"- {len(rounds)} rounds; each runs {args.per_run} images through each side in a rotating order "
         f"(stream/http/grpc, http/grpc/stream, ...); {args.clients} client threads for HTTP and gRPC"), "",
        "| figure | HTTP | gRPC | in-process `stream()` |", "| --- | ---: | ---: | ---: |",
        f"| throughput, median of rounds (images/s) | {med['http']:.2f} | {med['grpc']:.2f} | {med['stream']:.2f} |",
        (f"| ratio to `stream()`, median of per-round ratios | **{report['ratio_per_round_median']['http']:.2f}** | "
         f"**{report['ratio_per_round_median']['grpc']:.2f}** | 1 |"),
        (f"| ratio of the medians | {report['ratio_of_medians']['http']:.2f} | "
         f"{report['ratio_of_medians']['grpc']:.2f} | 1 |"),
        (f"| latency p50 / p99 (ms) | {report['latency_ms_p50']['http'] or 0:.0f} / "
         f"{report['latency_ms_p99']['http'] or 0:.0f} | {report['latency_ms_p50']['grpc'] or 0:.0f} / "
         f"{report['latency_ms_p99']['grpc'] or 0:.0f} | |"),
        f"| errors | {report['errors']} of {report['requests']:,} requests | | |",
        (f"| server RSS after warm-up / max / last (MiB) | {report['server_rss_mib']['after_warmup']:.0f} / "
         f"{report['server_rss_mib']['max']:.0f} / {report['server_rss_mib']['last']:.0f} | | |"), "",
        "Per round (images/s): " + "; ".join(
            f"{r + 1}: " + ", ".join(f"{x['kind']} {x['images_per_s']:.2f}" for x in runs if x["round"] == r)
            for r in rounds), "",
    ]
    args.out.with_suffix(".md").write_text("\n".join(line for line in md if line is not None) + "\n")
    if complete:
        print("\n".join(md))
    return report


if __name__ == "__main__":
    raise SystemExit(main())
