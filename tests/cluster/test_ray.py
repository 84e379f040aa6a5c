"""A real two-raylet Ray cluster on loopback against local seg-infer, on real Kvasir-SEG; S3 through moto."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import pytest

from attnseg.cli.infer import main as seg_infer
from attnseg.cluster import ClusterOptions, segment_dataset
from attnseg.imaging import read_image
from attnseg.runtime.outputs import OutputOptions
from tests.cluster.conftest import download, upload
from tests.runtime.frontend_base import FrontEndContract

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # Ray start-up and actor pools: tens of seconds on 2 busy cores


@pytest.fixture(scope="module")
def local_60(cluster_ir, kvasir_60, tmp_path_factory) -> Path:
    """What local seg-infer writes for the 60 images."""
    out = tmp_path_factory.mktemp("local") / "out"
    assert seg_infer([str(cluster_ir), str(kvasir_60), "-o", str(out), "-q"]) == 0
    return out


def _files(folder: Path) -> dict[str, bytes]:
    """Pictures under OUT (masks/, overlays/, attention/), by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.parent.name in ("masks", "overlays", "attention") and not p.name.startswith(".")}


def _pictures(files: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in files.items() if k.split("/")[0] in ("masks", "overlays", "attention")}


def _images_without_timings(summary: dict) -> list[dict]:
    return [{k: v for k, v in s.items() if k != "timings"} for s in summary["images"]]


def _manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def _wait_for_shard(out: Path, timeout: float = 300) -> dict:
    """The first record a worker wrote (its pictures are in place), once one exists."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for shard in sorted((out / "manifest.d").glob("*.jsonl")) if (out / "manifest.d").is_dir() else []:
            lines = shard.read_text().splitlines()
            if lines:
                return json.loads(lines[0])
        time.sleep(0.05)
    raise AssertionError(f"no worker wrote a shard into {out} in {timeout} s")


def test_the_cluster_has_two_raylets_on_loopback(ray_cluster):
    nodes = [n for n in ray.nodes() if n["Alive"]]
    assert len(nodes) == 2 and {n["NodeManagerAddress"] for n in nodes} == {"127.0.0.1"}
    assert ray.get_runtime_context().gcs_address.rsplit(":", 1)[0] == "127.0.0.1"


def test_two_nodes_write_exactly_what_local_seg_infer_writes(ray_cluster, cluster_ir, kvasir_60, local_60,
                                                             tmp_path):
    out = tmp_path / "ray"
    summary = segment_dataset(cluster_ir, kvasir_60, out, ClusterOptions(concurrency=2, batch_size=4))
    assert (summary.total, summary.segmented, summary.resumed, summary.failed) == (60, 60, 0, [])
    assert summary.workers == 2
    assert summary.driver_result_bytes < 60 * 200  # status rows only: no pictures through the driver

    local, remote = _files(local_60), _files(out)
    assert len([k for k in local if k.startswith("masks/")]) == 60
    assert sorted(remote) == sorted(local)  # same names: masks/*.png, overlays/*.jpg
    assert [k for k in local if local[k] != remote[k]] == []  # byte for byte

    ours, theirs = (json.loads((d / "summary.json").read_text()) for d in (out, local_60))
    assert sorted(ours) == sorted(theirs) and sorted(ours["summary"]) == sorted(theirs["summary"])
    assert _images_without_timings(ours) == _images_without_timings(theirs)
    assert ours["summary"]["class_pixel_counts"] == theirs["summary"]["class_pixel_counts"]

    records = _manifest(out)
    assert [r["key"] for r in records] == sorted(p.name for p in kvasir_60.iterdir())
    assert len({r["node"] for r in records}) == 2  # both raylets segmented images
    assert not list((out / "manifest.d").glob("*.jsonl"))  # shards merged
    for r in records:
        assert r["status"] == "ok" and r["error"] is None and len(r["content"]) == 64
        assert set(r["timings"]) >= {"read_ms", "decode_ms", "infer_ms", "encode_ms", "write_ms", "total_ms"}
        assert r["outputs"] == sorted([f"masks/{Path(r['key']).stem}.png", f"overlays/{Path(r['key']).stem}.jpg"])


def test_s3_in_s3_out_and_s3_in_local_out_equal_local(ray_cluster, s3_server, cluster_ir, kvasir_60, local_60,
                                                      tmp_path):
    few = tmp_path / "few"
    few.mkdir()
    names = sorted(p.name for p in kvasir_60.iterdir())[:12]
    for name in names:
        (few / name).symlink_to(kvasir_60 / name)
    upload(s3_server, "lake", "kvasir", few)
    expected = {k: v for k, v in _files(local_60).items() if Path(k).stem in {Path(n).stem for n in names}}
    assert len(expected) == 24

    summary = segment_dataset(cluster_ir, "s3://lake/kvasir", "s3://lake/out", ClusterOptions(concurrency=2))
    assert (summary.total, summary.segmented, summary.failed) == (12, 12, [])
    assert summary.output == "s3://lake/out"
    remote = download(s3_server, "lake", "out")
    assert _pictures(remote) == expected
    assert sorted(k for k in remote if not k.startswith(("masks/", "overlays/")) and not k.endswith("/")) == [
        "manifest.d/_run.json", "manifest.jsonl", "summary.json"]
    report = json.loads(remote["summary.json"])
    assert len(report["images"]) == 12 and report["output"] == "s3://lake/out"

    again = segment_dataset(cluster_ir, "s3://lake/kvasir", "s3://lake/out", ClusterOptions(concurrency=2))
    assert (again.resumed, again.segmented) == (12, 0)

    local_out = tmp_path / "from_s3"
    assert seg_infer([str(cluster_ir), "s3://lake/kvasir", "-o", str(local_out), "--ray", "-q"]) == 0
    assert _files(local_out) == expected


def test_resume_is_by_content_and_an_early_killed_run_resumes(ray_cluster, cluster_ir, kvasir_60, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    names = sorted(p.name for p in kvasir_60.iterdir())[:6]
    for name in names:
        shutil.copy(kvasir_60 / name, folder / name)
    out = tmp_path / "out"
    # What a run killed before its first image leaves: its marker and empty folders.
    (out / "manifest.d").mkdir(parents=True)
    (out / "manifest.d" / "_run.json").write_text("{}")
    (out / "masks").mkdir()
    (out / "overlays").mkdir()
    first = segment_dataset(cluster_ir, folder, out, ClusterOptions(concurrency=2))  # no --force needed
    assert first.segmented == 6
    kept = {p: p.stat().st_mtime_ns for p in (out / "masks").iterdir()}

    # The same name, other pictures: the image must be segmented again, the others not.
    changed = folder / names[2]
    changed.write_bytes((kvasir_60 / sorted(p.name for p in kvasir_60.iterdir())[40]).read_bytes())
    os.utime(changed, ns=(changed.stat().st_atime_ns, (folder / names[0]).stat().st_mtime_ns))
    again = segment_dataset(cluster_ir, folder, out, ClusterOptions(concurrency=2))
    assert (again.resumed, again.segmented) == (5, 1)
    redone = out / "masks" / f"{Path(names[2]).stem}.png"
    assert {p: p.stat().st_mtime_ns for p in kept if p != redone} == {p: t for p, t in kept.items() if p != redone}

    local = tmp_path / "local"
    assert seg_infer([str(cluster_ir), str(folder), "-o", str(local), "-q"]) == 0
    assert _files(out) == _files(local)
    records = {r["key"]: r for r in _manifest(out)}
    assert len(records) == 6


def test_a_killed_driver_resumes_complete(ray_cluster, cluster_ir, kvasir_60, local_60, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "attnseg.cli.infer", str(cluster_ir), str(kvasir_60), "-o", str(out),
           "--ray", ray_cluster.address, "--concurrency", "2", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_shard(out)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "summary.json").exists()

    summary = segment_dataset(cluster_ir, kvasir_60, out, ClusterOptions(concurrency=2))
    assert summary.resumed >= 1 and summary.resumed + summary.segmented == 60 and not summary.failed
    assert _files(out) == _files(local_60)
    keys = [r["key"] for r in _manifest(out)]
    assert sorted(keys) == sorted(p.name for p in kvasir_60.iterdir())  # each image once
    assert len(json.loads((out / "summary.json").read_text())["images"]) == 60


def test_a_killed_worker_still_ends_complete_with_clean_json(ray_cluster, cluster_ir, kvasir_60, local_60, tmp_path,
                                                             capfd):
    out = tmp_path / "out"
    killed: list[int] = []

    def kill_one_worker() -> None:
        record = _wait_for_shard(out)
        pid = int(record["worker"].rsplit(":", 1)[1])
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_one_worker, daemon=True)
    killer.start()
    code = seg_infer([str(cluster_ir), str(kvasir_60), "-o", str(out), "--ray", "--concurrency", "2", "--json"])
    killer.join(timeout=60)
    captured = capfd.readouterr()
    assert code == 0 and killed
    report = json.loads(captured.out)  # nothing but the JSON on stdout
    assert report["segmented"] == 60 and report["failed"] == []
    assert _files(out) == _files(local_60)
    assert sorted(r["key"] for r in _manifest(out)) == sorted(p.name for p in kvasir_60.iterdir())


def test_a_corrupt_image_is_reported_and_recorded(ray_cluster, cluster_ir, kvasir_60, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    good = sorted(kvasir_60.iterdir())[:3]
    for p in good:
        shutil.copy(p, folder / p.name)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg " * 40)
    out = tmp_path / "out"
    args = [str(cluster_ir), str(folder), "-o", str(out), "--ray", "--concurrency", "2", "--attention-maps"]

    assert seg_infer([*args, "-q"]) == 1
    err = capsys.readouterr().err
    assert "broken.jpg failed: Image" in err and "cannot be decoded" in err and "--skip-errors" in err
    assert "Traceback" not in err
    failed = [r for r in _manifest(out) if r["key"] == "broken.jpg"]
    assert len(failed) == 1 and failed[0]["status"] == "error" and "cannot be decoded" in failed[0]["error"]
    assert not (out / "masks" / "broken.png").exists()

    assert seg_infer([*args, "--skip-errors", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [f["image"] for f in report["failed"]] == ["broken.jpg"]
    assert report["total"] == 4 and report["segmented"] + report["resumed"] == 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["summary"]["skipped"] == ["broken.jpg"] and summary["summary"]["frames"] == 3
    for p in good:
        assert (out / "masks" / f"{p.stem}.png").is_file() and (out / "overlays" / f"{p.stem}.jpg").is_file()
        assert sorted(q.name for q in (out / "attention").glob(f"{p.stem}_*.jpg")) == [
            f"{p.stem}_Att{i}.jpg" for i in (2, 3, 4, 5)]
    local = tmp_path / "local"
    assert seg_infer([str(cluster_ir), str(folder), "-o", str(local), "--attention-maps", "--skip-errors", "-q"]) == 0
    assert _files(local) == _files(out)


POISON_SITE = '''
import os
import cv2
_imdecode = cv2.imdecode
def _poisoned(buf, flags):
    if bytes(buf[-16:]).endswith(b"POISON-PILL"):
        os._exit(3)  # what a native crash or the OOM killer does to the worker process
    return _imdecode(buf, flags)
cv2.imdecode = _poisoned
'''


def test_an_image_that_kills_its_worker_is_retried_a_bounded_number_of_times(ray_cluster, cluster_ir, kvasir_60,
                                                                              tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    good = sorted(kvasir_60.iterdir())[:3]
    for p in good:
        shutil.copy(p, folder / p.name)
    (folder / "poison.jpg").write_bytes(good[0].read_bytes() + b"POISON-PILL")  # a valid JPEG, trailing bytes
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(POISON_SITE)
    out = tmp_path / "out"
    # A separate driver whose job's workers load the poison (a job-level runtime environment).
    script = (
        "import os, ray, json, sys\n"
        "from attnseg.cluster import ClusterOptions, segment_dataset\n"
        f"ray.init(address={ray_cluster.address!r}, log_to_driver=False, runtime_env={{'env_vars': "
        f"{{'PYTHONPATH': {str(site)!r} + os.pathsep + os.environ.get('PYTHONPATH', '')}}}})\n"
        f"s = segment_dataset({str(cluster_ir)!r}, {str(folder)!r}, {str(out)!r}, "
        "ClusterOptions(concurrency=1, batch_size=4, skip_errors=True))\n"
        "print('REPORT', json.dumps(s.as_dict()))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                          check=False, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("REPORT "))[7:])
    assert report["segmented"] == 3 and [f["image"] for f in report["failed"]] == ["poison.jpg"]
    assert "worker process died 3 times" in report["failed"][0]["error"]
    record = next(r for r in _manifest(out) if r["key"] == "poison.jpg")
    assert record["status"] == "error"
    assert sorted(p.name for p in (out / "masks").iterdir()) == sorted(f"{p.stem}.png" for p in good)


def test_video_frame_ranges_give_local_masks(ray_cluster, cluster_ir, kvasir_60, tmp_path):
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (96, 80))
    for p in sorted(kvasir_60.iterdir())[:9]:
        writer.write(cv2.resize(read_image(p), (96, 80)))
    writer.release()
    local = tmp_path / "local"
    assert seg_infer([str(cluster_ir), str(video), "-o", str(local), "-q"]) == 0
    out = tmp_path / "ray"
    summary = segment_dataset(cluster_ir, video, out, ClusterOptions(concurrency=2, video_chunk=4,
                                                                     outputs=OutputOptions(overlays=True)))
    assert summary.segmented == 9
    local_masks = {k: v for k, v in _files(local).items() if k.startswith("masks/")}
    assert sorted(local_masks) == [f"masks/frame_{i:06d}.png" for i in range(9)]
    assert _files(out) == local_masks  # three ranges, seeks included: the same frames, the same masks
    ours, theirs = (json.loads((d / "summary.json").read_text()) for d in (out, local))
    assert _images_without_timings(ours) == _images_without_timings(theirs)
    again = segment_dataset(cluster_ir, video, out, ClusterOptions(concurrency=2, video_chunk=4))
    assert (again.resumed, again.segmented) == (9, 0)


class TestRayContract(FrontEndContract):
    """The shared front-end contract through segment_dataset: masks read back from OUT equal the
    independent reference, in input order (the cluster path writes masks, not probabilities)."""

    probabilities = False

    @pytest.fixture(autouse=True)
    def _cluster(self, ray_cluster, tmp_path):
        self.tmp = tmp_path

    def segment(self, xml, images, return_probabilities=False):
        folder = self.tmp / f"in_{Path(xml).parent.name}"
        folder.mkdir()
        names = [f"{i:02d}_{p.name}" for i, p in enumerate(images)]  # a repeated image gets its own name
        for name, p in zip(names, images):
            (folder / name).symlink_to(p)
        out = self.tmp / f"out_{Path(xml).parent.name}"
        summary = segment_dataset(xml, folder, out, ClusterOptions(concurrency=1, batch_size=2))
        assert summary.segmented == len(images) and not summary.failed
        binary = len(json.loads((out / "summary.json").read_text())["summary"]["classes"]) == 2  # 0/255 PNGs
        results = []
        for name in names:
            png = cv2.imread(str(out / "masks" / f"{Path(name).stem}.png"), cv2.IMREAD_UNCHANGED)
            results.append({"mask": (png > 0).astype("uint8") if binary else png, "probabilities": None})
        return results
