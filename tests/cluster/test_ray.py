"""A real local Ray cluster (2 worker CPUs, one per module) against local seg-infer, on real Kvasir-SEG."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import cv2
import pytest

from attnseg.cli.infer import main as seg_infer
from attnseg.cluster import ClusterOptions, segment_dataset, start_local_ray
from attnseg.imaging import read_image
from attnseg.metadata import ModelMetadata
from attnseg.runtime.outputs import OutputOptions
from tests.runtime.frontend_base import FrontEndContract

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # Ray start-up and actor pools: tens of seconds on 2 busy cores


@pytest.fixture(scope="module")
def ray_cluster():
    start_local_ray(num_cpus=2, quiet=True)  # what seg-infer --ray does; runs below join it
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_60(cluster_ir, kvasir_60, tmp_path_factory) -> Path:
    """What local seg-infer writes for the 60 images."""
    out = tmp_path_factory.mktemp("local") / "out"
    assert seg_infer([str(cluster_ir), str(kvasir_60), "-o", str(out), "-q"]) == 0
    return out


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.parent != folder}


def _images_without_timings(summary_json: Path) -> list[dict]:
    images = json.loads(summary_json.read_text())["images"]
    return [{k: v for k, v in s.items() if k != "timings"} for s in images]


def _manifest(out: Path) -> list[dict]:
    """Every record; a line a killed run cut short is not one."""
    records = []
    for line in (out / "manifest.jsonl").read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return records


def test_the_local_instance_listens_on_loopback_only(ray_cluster):
    gcs_host = ray_cluster.get_runtime_context().gcs_address.rsplit(":", 1)[0]
    assert gcs_host == "127.0.0.1"
    assert {n["NodeManagerAddress"] for n in ray_cluster.nodes()} == {"127.0.0.1"}


def test_two_workers_write_exactly_what_local_seg_infer_writes(ray_cluster, cluster_ir, kvasir_60, local_60,
                                                               tmp_path):
    out = tmp_path / "ray"
    summary = segment_dataset(cluster_ir, kvasir_60, out, ClusterOptions(concurrency=2, batch_size=4))
    assert (summary.total, summary.segmented, summary.resumed, summary.failed) == (60, 60, 0, [])
    assert summary.workers == 2

    local, remote = _files(local_60), _files(out)
    assert len([k for k in local if k.startswith("masks/")]) == 60
    assert sorted(remote) == sorted(local)  # same names: masks/*.png, overlays/*.jpg
    assert [k for k in local if local[k] != remote[k]] == []  # byte for byte

    ours, theirs = json.loads((out / "summary.json").read_text()), json.loads((local_60 / "summary.json").read_text())
    assert sorted(ours) == sorted(theirs) and sorted(ours["summary"]) == sorted(theirs["summary"])
    assert _images_without_timings(out / "summary.json") == _images_without_timings(local_60 / "summary.json")
    assert ours["summary"]["class_pixel_counts"] == theirs["summary"]["class_pixel_counts"]

    records = _manifest(out)
    assert sorted(r["key"] for r in records) == sorted(p.name for p in kvasir_60.iterdir())
    workers = {r["worker"] for r in records}
    assert len(workers) == 2  # both actors segmented images
    for r in records:
        mask = cv2.imread(str(out / "masks" / (Path(r["key"]).stem + ".png")), cv2.IMREAD_UNCHANGED)
        assert r["status"] == "ok" and r["error"] is None
        assert r["foreground_fraction"] == pytest.approx((mask == 255).mean(), abs=1e-6)
        assert r["class_pixel_counts"] == {"background": int((mask == 0).sum()), "polyp": int((mask == 255).sum())}
        assert set(r["timings"]) >= {"read_ms", "decode_ms", "infer_ms", "encode_ms", "total_ms"}
        assert r["outputs"] == sorted([f"masks/{Path(r['key']).stem}.png", f"overlays/{Path(r['key']).stem}.jpg"])


def test_a_killed_job_resumes_without_redoing_finished_images(ray_cluster, cluster_ir, kvasir_60, local_60,
                                                              tmp_path):
    first = tmp_path / "first20"
    first.mkdir()
    names = sorted(p.name for p in kvasir_60.iterdir())
    for name in names[:20]:
        (first / name).symlink_to(kvasir_60 / name)
    out = tmp_path / "out"
    assert segment_dataset(cluster_ir, first, out, ClusterOptions(concurrency=2)).segmented == 20
    done = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*.*") if p.parent.name in ("masks", "overlays")}
    assert len(done) == 40

    # What a SIGKILL leaves: a half-written manifest line, an unrenamed temp file, and an image
    # whose mask was renamed into place but whose manifest line never got written.
    orphan = Path(names[20]).stem
    with (out / "manifest.jsonl").open("a") as fh:
        fh.write('{"key": "' + names[21] + '", "status": "o')
    stale = out / "masks" / f".{orphan}.png.{dead_pid()}.a1b2c3d4.tmp"
    stale.write_bytes(b"half a png")
    (out / "masks" / f"{orphan}.png").write_bytes(b"not the mask")

    summary = segment_dataset(cluster_ir, kvasir_60, out, ClusterOptions(concurrency=2))
    assert (summary.resumed, summary.segmented, summary.failed) == (20, 40, [])
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in done} == done  # not rewritten
    keys = [r["key"] for r in _manifest(out)]
    assert len(keys) == 60 and len((out / "manifest.jsonl").read_text().splitlines()) == 61  # + the cut line
    assert all(keys.count(n) == 1 for n in names)  # nobody segmented twice (the cut line is not a record)
    assert not list(out.rglob(".*.tmp"))
    assert _files(out) == _files(local_60)  # the orphan mask was redone, everything equals local
    assert len(json.loads((out / "summary.json").read_text())["images"]) == 60

    again = segment_dataset(cluster_ir, kvasir_60, out, ClusterOptions(concurrency=2))
    assert (again.resumed, again.segmented, again.workers) == (60, 0, 0)  # nothing left: Ray not even used


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
    assert _images_without_timings(out / "summary.json") == _images_without_timings(local / "summary.json")


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
        binary = ModelMetadata.read_json(Path(xml).with_suffix(".json")).task == "binary"  # 0/255 mask files
        results = []
        for name in names:
            png = cv2.imread(str(out / "masks" / f"{Path(name).stem}.png"), cv2.IMREAD_UNCHANGED)
            results.append({"mask": (png > 0).astype("uint8") if binary else png, "probabilities": None})
        return results
