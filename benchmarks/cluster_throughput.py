"""Cluster throughput: local seg-infer against seg-infer --ray with 1 and 2 workers, in one run.

On the same N real Kvasir-SEG images (default 500) and the same IR (default: the shipped
AttU_Net w16 exported with ``attnseg.export``), one after the other in one process:

* local ``seg-infer`` (throughput hint, all cores, decode on the main thread overlapping inference);
* ``segment_dataset`` on a local Ray instance (started once, not timed in the runs) with 1 and
  with 2 workers (one Segmenter and one OpenVINO thread each);

and from the workers' manifests: the per-image read, decode, inference and encode times, the
per-image overhead Ray adds (wall time per image at 1 worker minus the worker's own time), the
bytes that travel per image, and the driver's cost per image (writing the files and the manifest
line). From those, the markdown projects throughput to N nodes and says what limits it first.

    python benchmarks/cluster_throughput.py                      # writes benchmarks/results/cluster_throughput.{json,md}
    python benchmarks/cluster_throughput.py --model exported/model.xml --count 200
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = REPO.parent / "shared" / "data" / "kvasir-seg" / "images"
RESULTS = REPO / "benchmarks" / "results"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, help="IR to run (default: export the shipped model into --work)")
    p.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="folder of real images")
    p.add_argument("--count", type=int, default=500, help="images per run")
    p.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    p.add_argument("--out", type=Path, default=RESULTS / "cluster_throughput.json")
    p.add_argument("--report-only", action="store_true",
                   help="re-render the report from the saved JSON and the manifests kept in --work")
    args = p.parse_args(argv)
    if args.report_only:
        if args.work is None:
            raise SystemExit("--report-only needs --work (the folder of the measured run)")
        report = json.loads(args.out.read_text())
        for key in ("ray_1", "ray_2"):
            report[key].update(manifest_stats(args.work / key.replace("_", ""), args.work / "local"))
        report.update(analysis(report))
        return write(report, args.out)

    work = args.work or Path(tempfile.mkdtemp(prefix="cluster_throughput_"))
    work.mkdir(parents=True, exist_ok=True)
    report: dict = {"command": "python benchmarks/cluster_throughput.py"
                    + (f" --count {args.count}" if args.count != 500 else ""),
                    "machine": machine(), "load_average_start": list(os.getloadavg())}
    model = args.model or export_shipped(work / "shipped")
    folder = link_images(args.images, args.count, work / "images")
    report["model"] = str(model)
    report["images"] = args.count
    report["input_bytes_per_image"] = round(statistics.mean(p.stat().st_size for p in folder.iterdir()))

    report["local"] = run_local(model, folder, work / "local")

    import ray

    from attnseg.cluster import start_local_ray

    t0 = time.perf_counter()
    start_local_ray(num_cpus=os.cpu_count() or 2, quiet=True)
    report["ray_start_seconds"] = round(time.perf_counter() - t0, 2)
    try:
        for workers in (1, 2):
            report[f"ray_{workers}"] = run_ray(model, folder, work / f"ray{workers}", workers,
                                               work / "local")
    finally:
        ray.shutdown()
    report["driver_ms_per_image"] = driver_cost(work / "ray1", work / "driver_replay")
    report["load_average_end"] = list(os.getloadavg())
    report.update(analysis(report))

    write(report, args.out)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def write(report: dict, out: Path) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print(out.with_suffix(".md").read_text())
    return 0


# ---------------------------------------------------------------------- setup
def machine() -> dict:
    info = {"cpu": platform.processor() or "unknown", "cores": os.cpu_count(), "python": platform.python_version()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return info
    for line in lscpu.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Model name":
            info["cpu"] = value.strip()
        if key.strip() == "Flags":
            flags = value.split()
            info["flags"] = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
                             if f in flags]
    return info


def export_shipped(folder: Path) -> Path:
    """The shipped AttU_Net w16 through attnseg's own export (FP32 IR, preprocessing embedded)."""
    xml = folder / "model.xml"
    if xml.is_file():
        return xml
    from attnseg.export import export

    export(None, output_dir=folder, force=True)
    return xml


def link_images(source: Path, count: int, folder: Path) -> Path:
    from attnseg.imaging import list_images

    images = list_images(source)[:count]
    if len(images) < count:
        raise SystemExit(f"{source} has only {len(images)} images, {count} asked for")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for img in images:
        (folder / img.name).symlink_to(img.resolve())
    return folder


# ---------------------------------------------------------------------- runs
def run_local(model: Path, folder: Path, out: Path) -> dict:
    from attnseg.cli.infer import main as seg_infer

    t0 = time.perf_counter()
    rc = seg_infer([str(model), str(folder), "-o", str(out), "--force", "-q"])
    wall = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"local seg-infer failed ({rc})")
    summary = json.loads((out / "summary.json").read_text())
    n = summary["summary"]["frames"]
    return {"seconds": round(wall, 2), "images_per_second": round(n / wall, 2),
            "latency_ms_median": summary["summary"]["latency_ms_median"],
            "note": "Segmenter(hint=throughput) over all cores, stream() with decode on the main thread"}


def run_ray(model: Path, folder: Path, out: Path, workers: int, local_out: Path) -> dict:
    from attnseg.cluster import ClusterOptions, segment_dataset

    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    s = segment_dataset(model, folder, out, ClusterOptions(concurrency=workers, force=True, progress=False))
    wall = time.perf_counter() - t0
    return {"workers": workers, "segmented": s.segmented, "failed": len(s.failed),
            "seconds": round(wall, 2), "images_per_second": round(s.segmented / wall, 2),
            **manifest_stats(out, local_out)}


def manifest_stats(out: Path, local_out: Path) -> dict:
    """Per-stage medians, steady-state rate and its overhead, bytes, and equality with local, from a run's manifest."""
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    ok = sorted((r for r in records if r["status"] == "ok"), key=lambda r: r["time"])
    times = [r["time"] for r in ok]
    skip = max(1, len(times) // 10)  # steady state: after the pool's start-up and first batches
    steady = (len(times) - 1 - skip) / (times[-1] - times[skip]) if times[-1] > times[skip] else 0.0
    window = ok[skip + 1:]  # the images whose completion the steady rate counts

    def med(key: str) -> float:
        return round(statistics.median(r["timings"][key] for r in ok), 3)

    def mean(key: str) -> float:
        return round(statistics.mean(r["timings"][key] for r in ok), 3)

    stage = {k: med(k) for k in ("read_ms", "decode_ms", "preprocess_ms", "infer_ms", "postprocess_ms",
                                 "encode_ms", "worker_total_ms")}
    mismatched = [p.name for p in (local_out / "masks").iterdir()
                  if (out / "masks" / p.name).read_bytes() != p.read_bytes()]
    out_bytes = [sum((out / rel).stat().st_size for rel in r["outputs"]) for r in ok]
    return {
        "steady_images_per_second": round(steady, 2),
        "median_ms": stage, "mean_worker_total_ms": mean("worker_total_ms"),
        "steady_mean_worker_total_ms": round(statistics.mean(r["timings"]["worker_total_ms"] for r in window), 3),
        "output_bytes_per_image": round(statistics.mean(out_bytes)),
        "masks_differing_from_local": len(mismatched),
    }


def driver_cost(ray_out: Path, scratch: Path) -> float:
    """Median ms the driver spends per image: write its files atomically, append its manifest line."""
    from attnseg.cluster import Manifest
    from attnseg.runtime.outputs import write_files

    records = [json.loads(line) for line in (ray_out / "manifest.jsonl").read_text().splitlines()][:200]
    shutil.rmtree(scratch, ignore_errors=True)
    for sub in ("masks", "overlays"):
        (scratch / sub).mkdir(parents=True)
    blobs = [(r, {rel: (ray_out / rel).read_bytes() for rel in r["outputs"]}) for r in records]
    manifest = Manifest(scratch)
    times = []
    for record, files in blobs:
        t0 = time.perf_counter()
        write_files(scratch, files)
        manifest.append(record)
        times.append((time.perf_counter() - t0) * 1e3)
    manifest.close()
    shutil.rmtree(scratch, ignore_errors=True)
    return round(statistics.median(times), 3)


# ---------------------------------------------------------------------- on paper
def analysis(r: dict) -> dict:
    one = r["ray_1"]
    per_image_wall_ms = 1000.0 / one["steady_images_per_second"] if one["steady_images_per_second"] else 0.0
    overhead = per_image_wall_ms - one["steady_mean_worker_total_ms"]
    m = one["median_ms"]
    worker_ms = m["worker_total_ms"]
    stages = {"I/O (read)": m["read_ms"], "decode": m["decode_ms"],
              "inference (pre + infer + post)": m["preprocess_ms"] + m["infer_ms"] + m["postprocess_ms"],
              "encode (mask png + overlay jpg)": m["encode_ms"]}
    per_worker = 1000.0 / (worker_ms + max(overhead, 0.0))
    driver_cap = 1000.0 / r["driver_ms_per_image"] if r["driver_ms_per_image"] else float("inf")
    return {"ray_overhead_ms_per_image": round(overhead, 2), "per_image_wall_ms_1_worker": round(per_image_wall_ms, 2),
            "stage_ms_median_1_thread": {k: round(v, 2) for k, v in stages.items()},
            "projected_images_per_second_per_worker": round(per_worker, 2),
            "driver_cap_images_per_second": round(driver_cap, 1)}


def overhead_sentence(r: dict) -> str:
    one = r["ray_1"]
    wall, own, over = r["per_image_wall_ms_1_worker"], one["steady_mean_worker_total_ms"], r["ray_overhead_ms_per_image"]
    head = (f"Ray's overhead per image at 1 worker: steady wall time per image {wall} ms against the worker's "
            f"own time {own} ms for the same images, ")
    if over <= 0.02 * own:
        head += (f"a difference of {over} ms, **not measurable above the noise** (under 2% of an image's time): "
                 "Ray Data keeps several batches queued at the actor, so moving rows and the encoded files "
                 "through the object store and writing them on the driver overlap the next image's work.")
    else:
        head += (f"so **{over} ms per image** ({100 * over / own:.0f}%) go to batching, moving rows and the "
                 "encoded files through the object store, and the driver writing them.")
    return head + (f" The serial part that stays, the driver writing one image's files atomically plus its "
                   f"manifest line, costs {r['driver_ms_per_image']} ms.")


def scaling_sentence(one: dict, two: dict) -> str:
    grow = one["median_ms"]["worker_total_ms"]
    grow2 = two["median_ms"]["worker_total_ms"]
    return (f"1 -> 2 workers: {one['steady_images_per_second']} -> {two['steady_images_per_second']} images/s "
            f"steady, while a worker's time per image went from {grow} to {grow2} ms "
            f"({grow2 / grow:.2f}x). With the two cores already oversubscribed by other jobs (see the load "
            "average), a second worker only splits the CPU time the first one had; on idle cores workers are "
            "independent processes and the rate adds up. The scaling below therefore uses the per-image time "
            "of one worker, not the 2-worker wall rate.")


def markdown(r: dict) -> str:
    mc = r["machine"]
    loc, one, two = r["local"], r["ray_1"], r["ray_2"]
    stages = r["stage_ms_median_1_thread"]
    total_stage = sum(stages.values())
    per_worker = r["projected_images_per_second_per_worker"]
    driver_cap = r["driver_cap_images_per_second"]
    in_kb, out_kb = r["input_bytes_per_image"] / 1024, one["output_bytes_per_image"] / 1024
    lines = [
        "# Cluster throughput: local seg-infer vs seg-infer --ray",
        "",
        (f"`{r['command']}` on {r['images']} Kvasir-SEG images, model `{Path(r['model']).name}` "
        f"(the shipped AttU_Net w16, 256x256, FP32 IR), one run."),
        (f"CPU: **{mc.get('cpu')}**, {mc.get('cores')} cores (flags: {', '.join(mc.get('flags', [])) or 'none of note'}). "
        f"The machine is shared with other jobs: load average {r['load_average_start'][0]:.1f} at the start, "
        f"{r['load_average_end'][0]:.1f} at the end, so absolute numbers are noisy; the three runs were "
        "measured back to back in one process."),
        "",
        "| run | workers | wall s | images/s | steady images/s | masks equal to local |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
        f"| local `seg-infer` | 1 process | {loc['seconds']} | {loc['images_per_second']} | - | (reference) |",
        (f"| `--ray` | 1 | {one['seconds']} | {one['images_per_second']} | {one['steady_images_per_second']} | "
        f"{'yes' if one['masks_differing_from_local'] == 0 else str(one['masks_differing_from_local']) + ' differ'} |"),
        (f"| `--ray` | 2 | {two['seconds']} | {two['images_per_second']} | {two['steady_images_per_second']} | "
        f"{'yes' if two['masks_differing_from_local'] == 0 else str(two['masks_differing_from_local']) + ' differ'} |"),
        "",
        (f"Wall time of a `--ray` run includes starting its actor pool (each worker process imports "
        f"OpenVINO and compiles the model); starting the local Ray instance itself ({r['ray_start_seconds']} s) "
        "is not included. Steady images/s counts from the 10th percentile of finished images on."),
        "",
        "## Where a worker's time goes (median per image, one OpenVINO thread)",
        "",
        "| stage | ms | share |",
        "| --- | ---: | ---: |",
        *[f"| {k} | {v} | {100 * v / total_stage:.0f}% |" for k, v in stages.items()],
        f"| worker total | {one['median_ms']['worker_total_ms']} | |",
        "",
        overhead_sentence(r),
        "",
        (f"Bytes per image: {in_kb:.0f} KiB of JPEG read by a worker, {out_kb:.0f} KiB of mask + overlay "
         "sent back to the driver."),
        "",
        scaling_sentence(one, two),
        "",
        "## On paper: N nodes",
        "",
        (f"A worker does one image in about {one['median_ms']['worker_total_ms']} ms plus the overhead, so "
        f"**{per_worker:.1f} images/s per worker (per core)**. Workers share nothing but the driver, so "
        "throughput is linear in cores until the driver or the storage saturates:"),
        "",
        ("    images/s(N nodes x C cores) = min( N * C * per_worker,  driver cap,  storage / input bytes,  "
        "driver NIC / output bytes )"),
        "",
        "| nodes x cores | compute bound images/s | limited by |",
        "| --- | ---: | --- |",
    ]
    storage_cap = 1.25e9 / r["input_bytes_per_image"]  # 10 GbE shared storage
    nic_cap = 1.25e9 / max(one["output_bytes_per_image"], 1)
    caps = {"driver (one writer loop)": driver_cap, "storage at 10 Gb/s (input JPEGs)": storage_cap,
            "driver NIC at 10 Gb/s (masks + overlays)": nic_cap}
    first_cap_name, first_cap = min(caps.items(), key=lambda kv: kv[1])
    for nodes, cores in ((1, 2), (4, 2), (1, 32), (4, 32), (16, 32), (64, 32)):
        compute = nodes * cores * per_worker
        limit = "compute (workers)" if compute < first_cap else first_cap_name
        lines.append(f"| {nodes} x {cores} | {compute:,.0f} | {limit} -> {min(compute, first_cap):,.0f} images/s |")
    dominant = max(stages, key=stages.get)
    knee_cores = first_cap / per_worker
    infer = stages["inference (pre + infer + post)"]
    jpeg = stages["I/O (read)"] + stages["decode"] + stages["encode (mask png + overlay jpg)"]
    lines += [
        "",
        (f"**What limits it first.** Inside a worker the largest stage is **{dominant}** "
         f"({stages[dominant]} of {total_stage:.1f} ms): inference (pre + infer + post) takes {infer:.1f} ms, "
         f"the image work around it {jpeg:.1f} ms (reading the file {stages['I/O (read)']} ms, decoding "
         f"{stages['decode']} ms, encoding the mask and overlay {stages['encode (mask png + overlay jpg)']} ms). "
         "Workers share nothing, so this per-image compute sets the rate on small clusters and scales "
         f"linearly with cores. The first shared limit is the **{first_cap_name}** at about "
         f"{first_cap:,.0f} images/s, reached near {knee_cores:,.0f} worker cores (the worker's time per image "
         f"over the driver's, {knee_cores / 32:.0f} nodes of 32 cores); storage bandwidth for the "
         f"input JPEGs ({storage_cap:,.0f} images/s at 10 Gb/s) and the driver's NIC for the results "
         f"({nic_cap:,.0f} images/s) come later. Past the driver limit more nodes do not help: workers would "
         "have to write their outputs to shared storage themselves (the driver then only appends manifest "
         "lines), or one driver would run per shard of the input."),
        "",
    ]
    if abs(loc["images_per_second"] - two["images_per_second"]) <= 0.1 * loc["images_per_second"]:
        lines.append(
            f"On this one machine local `seg-infer` ({loc['images_per_second']} images/s) and `--ray` with 2 "
            f"workers ({two['images_per_second']} images/s) are within 10%, inside the noise of a shared "
            "machine: on one box `--ray` buys resumability (manifest + resume) and isolation of failures, "
            "not speed; it is for inputs that outgrow one machine.")
    elif loc["images_per_second"] > two["images_per_second"]:
        lines.append(
            f"On this one machine local `seg-infer` ({loc['images_per_second']} images/s) beats `--ray` with 2 "
            f"workers ({two['images_per_second']} images/s): it overlaps decoding with OpenVINO's own "
            "multi-stream inference and pays no actor start-up or object-store transfer. `--ray` is for inputs "
            "that outgrow one machine and for runs that must survive being killed (manifest + resume).")
    else:
        lines.append(
            f"On this one machine `--ray` with 2 workers ({two['images_per_second']} images/s) outran local "
            f"`seg-infer` ({loc['images_per_second']} images/s): two processes decode and encode in parallel, "
            "while local seg-infer decodes and writes on one Python thread beside OpenVINO's streams.")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
