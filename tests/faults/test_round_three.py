"""Issue 24: option errors refused before any work, metadata guarded where it is read."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from .conftest import SRC, leftovers, one_clear_error


def _code_err(capsys, main, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


# ------------------------------------------------------------------------------ seg-export


def test_export_to_a_file_says_it_is_a_file_without_force_too(tiny_ckpt, tmp_path, capsys):
    from attnseg.cli.export import main

    f = tmp_path / "out.txt"
    f.write_text("mine")
    for extra in ((), ("--force",)):
        code, err = _code_err(capsys, main, tiny_ckpt, "-o", f, *extra)
        one_clear_error((code, err), "is a file")
        assert "--force" not in err  # --force would not help: not offered
    assert f.read_text() == "mine"


def test_negative_recurrences_are_refused_and_nothing_is_written(tmp_path, capsys):
    import torch

    from attnseg.cli.export import main
    from attnseg.models import create_model

    ck = tmp_path / "r2.pt"
    torch.save(create_model("R2U_Net", base_width=4, t=2).state_dict(), ck)
    code, err = _code_err(capsys, main, ck, "--arch", "R2U_Net", "--t", "-1", "-o", tmp_path / "out")
    one_clear_error((code, err), "t=-1")
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


# --------------------------------------------------------------------------- checkpoint metadata


def test_a_checkpoint_asking_for_a_huge_input_is_refused_naming_the_field(tmp_path, capsys):
    import torch

    from attnseg.cli.export import main
    from attnseg.errors import MetadataError
    from attnseg.models import create_model, load_checkpoint, save_checkpoint

    ck = save_checkpoint(tmp_path / "huge.pt", create_model("AttU_Net", base_width=4), input_size=(100000, 100000))
    with pytest.raises(MetadataError, match="input_size"):
        load_checkpoint(ck)
    code, err = _code_err(capsys, main, ck, "-o", tmp_path / "out")
    one_clear_error((code, err), "input_size")
    assert not (tmp_path / "out").exists()
    del torch


def test_an_ir_description_asking_for_a_huge_input_is_refused():
    from attnseg.errors import MetadataError
    from attnseg.metadata import ModelMetadata

    good = ModelMetadata(task="binary", classes=["polyp"], arch="AttU_Net", input_size=[64, 64]).to_dict()
    ModelMetadata.from_dict(good)
    with pytest.raises(MetadataError, match="input_size"):
        ModelMetadata.from_dict({**good, "input_size": [100000, 100000]})


# ------------------------------------------------------------------------------------ seg-infer


def _video(path, frames: int = 3):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (64, 64))
    for i in range(frames):
        w.write(np.full((64, 64, 3), 40 * i, np.uint8))
    w.release()
    return path


@pytest.mark.parametrize("frames", ["0", "-1"])
@pytest.mark.parametrize("kind", ["folder", "video"])
def test_max_frames_below_one_is_an_option_error(tiny_ir, kvasir12, tmp_path, capsys, frames, kind):
    from attnseg.cli.infer import main

    source = kvasir12 / "images" if kind == "folder" else _video(tmp_path / "clip.avi")
    out = tmp_path / "out"
    code, err = _code_err(capsys, main, tiny_ir, source, "-o", out, "--max-frames", frames)
    one_clear_error((code, err), "--max-frames")
    assert "no readable frames" not in err
    assert not out.exists() and leftovers(tmp_path) == []


def test_max_frames_keeps_exactly_that_many_images(tiny_ir, kvasir12, tmp_path, capsys):
    from attnseg.cli.infer import main

    out = tmp_path / "out"
    code, err = _code_err(capsys, main, tiny_ir, kvasir12 / "images", "-o", out, "--max-frames", "3", "-q",
                          "--no-overlays")
    assert code == 0, err
    assert len(list((out / "masks").iterdir())) == 3


def test_an_overlap_that_would_take_hours_is_refused_before_any_output(tiny_ir, kvasir12, tmp_path, capsys):
    from attnseg.cli.infer import main
    from attnseg.runtime.tiler import TileOptions

    out = tmp_path / "out"
    code, err = _code_err(capsys, main, tiny_ir, kvasir12 / "images", "-o", out, "--tile", "--tile-overlap", "0.99")
    one_clear_error((code, err), "overlap")
    assert not out.exists()
    TileOptions(overlap=0.5)  # usual overlaps stay accepted


# ------------------------------------------------------------------------------------ seg-train

TRAIN = ("--base-width", "4", "--input-size", "64", "64", "--batch-size", "2", "--test-count", "2",
         "--val-fraction", "0.2", "--workers", "0", "--threads", "1", "--training-precision", "fp32", "-q",
         "--max-train-batches", "1", "--epochs", "1")


def _train(capsys, data, out, *args) -> tuple[int, str]:
    from attnseg.cli.train import main

    return _code_err(capsys, main, "--data", f"kvasir:{data}", "-o", out, *TRAIN, *args)


def _snapshot(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def finished_run(kvasir12, tmp_path, capsys):
    out = tmp_path / "run"
    code, err = _train(capsys, kvasir12, out, "--seed", "1")
    assert code == 0, err
    assert {"best.pt", "last.pt", "history.json"} <= {p.name for p in out.iterdir()}
    return out


def test_a_finished_run_is_not_overwritten_without_resume_or_force(kvasir12, finished_run, capsys):
    before = _snapshot(finished_run)
    code, err = _train(capsys, kvasir12, finished_run, "--seed", "2")
    one_clear_error((code, err), "--resume", "--force")
    assert _snapshot(finished_run) == before
    assert leftovers(finished_run.parent) == []


def test_force_replaces_the_run_and_leaves_no_copy_of_the_old_one(kvasir12, finished_run, capsys):
    import json

    before = _snapshot(finished_run)
    code, err = _train(capsys, kvasir12, finished_run, "--seed", "2", "--force")
    assert code == 0, err
    after = _snapshot(finished_run)
    assert after["best.pt"] != before["best.pt"]
    assert len(json.loads(after["history.json"])) == 1
    assert leftovers(finished_run.parent) == [] and not list(finished_run.glob(".*"))


def test_a_forced_run_that_fails_early_gives_the_old_run_back(kvasir12, finished_run, tmp_path, capsys):
    from attnseg.cli.train import main

    before = _snapshot(finished_run)
    (tmp_path / "empty" / "images").mkdir(parents=True)
    (tmp_path / "empty" / "masks").mkdir()
    code, err = _code_err(capsys, main, "--data", f"kvasir:{tmp_path / 'empty'}", "-o", finished_run, *TRAIN,
                          "--force")
    assert code == 2 and "Traceback" not in err, err
    assert _snapshot(finished_run) == before
    assert not list(finished_run.glob(".*"))


def test_train_refuses_negative_recurrences_before_making_the_run_folder(kvasir12, tmp_path, capsys):
    code, err = _train(capsys, kvasir12, tmp_path / "deep" / "run", "--arch", "R2U_Net", "--t", "-1")
    one_clear_error((code, err), "--t")
    assert list(tmp_path.iterdir()) == []


def test_resuming_a_checkpoint_that_records_a_huge_input_is_refused(kvasir12, finished_run, tmp_path, capsys):
    import torch

    raw = torch.load(finished_run / "last.pt", weights_only=True)
    raw["input_size"] = [100000, 100000]
    raw["trained_with"]["config"]["input_size"] = [100000, 100000]
    bad = tmp_path / "bad_last.pt"
    torch.save(raw, bad)
    code, err = _train(capsys, kvasir12, tmp_path / "r2", "--resume", bad, "--epochs", "2")
    one_clear_error((code, err), "input")
    assert not (tmp_path / "r2").exists()


def test_resume_in_place_is_allowed_but_not_together_with_force(kvasir12, finished_run, capsys):
    import json

    before = _snapshot(finished_run)
    code, err = _train(capsys, kvasir12, finished_run, "--resume", finished_run / "last.pt", "--force",
                       "--epochs", "2")
    one_clear_error((code, err), "--force", "--resume")
    assert _snapshot(finished_run) == before
    code, err = _train(capsys, kvasir12, finished_run, "--resume", finished_run / "last.pt", "--epochs", "2")
    assert code == 0, err
    assert [r["epoch"] for r in json.loads((finished_run / "history.json").read_text())] == [1, 2]


# --------------------------------------------------------------------------------- --ovms-repo


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody may write in: a read-only tmpfs as root (root ignores modes), else mode 0555."""
    import os
    import subprocess

    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() == 0:
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], capture_output=True,
                             check=False)
        if res.returncode != 0:
            pytest.skip("cannot mount a read-only tmpfs here")
        yield ro
        subprocess.run(["umount", "-l", str(ro)], check=False)
    else:
        ro.chmod(0o555)
        yield ro
        ro.chmod(0o755)


def _export_refused(capsys, ckpt, out, *args) -> str:
    from attnseg.cli.export import main

    code, err = _code_err(capsys, main, ckpt, "-o", out, *args)
    one_clear_error((code, err))
    assert "Exporting" not in err
    return err


def test_ovms_repo_on_a_read_only_path_is_refused_before_exporting(tiny_ckpt, tmp_path, read_only_folder, capsys):
    out = tmp_path / "exp"
    _export_refused(capsys, tiny_ckpt, out, "--ovms-repo", read_only_folder / "repo")
    assert not out.exists() and leftovers(tmp_path) == []


def test_ovms_repo_under_a_file_is_refused_before_exporting(tiny_ckpt, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "exp"
    _export_refused(capsys, tiny_ckpt, out, "--ovms-repo", tmp_path / "afile" / "repo")
    assert not out.exists() and (tmp_path / "afile").read_text() == "x"


@pytest.mark.parametrize("entries", [[1, "model"], [{"config": "model"}]])
def test_a_config_json_with_non_object_entries_is_refused_before_exporting(tiny_ckpt, tmp_path, capsys, entries):
    import json

    repo = tmp_path / "repo"
    repo.mkdir()
    text = json.dumps({"model_config_list": entries})
    (repo / "config.json").write_text(text)
    out = tmp_path / "exp"
    _export_refused(capsys, tiny_ckpt, out, "--ovms-repo", repo)
    assert not out.exists()
    assert sorted(p.name for p in repo.iterdir()) == ["config.json"]  # no unregistered model/1/
    assert (repo / "config.json").read_text() == text


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("where", ["same", "inside", "around"])
def test_an_ovms_repo_overlapping_the_output_is_refused(tiny_ckpt, tmp_path, capsys, force, where):
    out = tmp_path / "exp"
    repo = {"same": out, "inside": out / "ovms", "around": tmp_path}[where]
    name = "exp" if where == "around" else "model"
    if force:
        out.mkdir()
        (out / "keep.txt").write_text("old export")
    _export_refused(capsys, tiny_ckpt, out, "--ovms-repo", repo, "--model-name", name, *(["--force"] if force else []))
    if force:
        assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    else:
        assert not out.exists()
    assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_an_ovms_entry_beside_the_output_is_written_and_registered(tiny_ckpt, tmp_path, capsys):
    import json

    from attnseg.cli.export import main

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "config.json").write_text(json.dumps({"model_config_list": [{"config": {"name": "other",
                                                                                      "base_path": "other"}}]}))
    code, err = _code_err(capsys, main, tiny_ckpt, "-o", tmp_path / "exp", "--ovms-repo", repo, "-q")
    assert code == 0, err
    names = [e["config"]["name"] for e in json.loads((repo / "config.json").read_text())["model_config_list"]]
    assert names == ["other", "model"] and (repo / "model" / "1" / "model.xml").is_file()


# ---------------------------------------------------------------------------- seg-benchmark --tune


@pytest.fixture
def tune_ir(tiny_ir, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setenv("ATTNSEG_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "ir"
    shutil.copytree(tiny_ir.parent, folder)
    return folder / tiny_ir.name


def _tune(capsys, *args) -> tuple[int, str, str]:
    from attnseg.cli.benchmark import main

    code = main(["--tune", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_tune_honours_precision_streams_requests_iterations_and_report_folder(tune_ir, tmp_path, capsys):
    import json

    reports = tmp_path / "reports"
    code, out, err = _tune(capsys, tune_ir, "-hint", "throughput", "--inference-precision", "f32", "-nstreams", "2",
                           "-nireq", "7", "-niter", "5", "-o", reports, "--json")
    assert code == 0, err
    result = json.loads(out)
    for c in result["candidates"]:
        assert c["properties"]["INFERENCE_PRECISION_HINT"] == "f32"
        assert c["streams"] == 2 and c["nireq"] == 7
    written = json.loads(tune_ir.with_name(tune_ir.stem + ".load_config.json").read_text())["CPU"]
    assert written["INFERENCE_PRECISION_HINT"] == "f32" and written["NUM_STREAMS"] == "2"
    assert written["PERFORMANCE_HINT_NUM_REQUESTS"] == "7" and result["nireq"] == 7
    assert json.loads((reports / "tune_report.json").read_text())["winner"] == result["winner"]


def test_tune_niter_sets_the_inferences_timed(tune_ir, capsys):
    import json

    code, out, err = _tune(capsys, tune_ir, "-niter", "4", "--inference-precision", "f32", "--json")
    assert code == 0, err
    assert set(json.loads(out)["iterations_per_round"].values()) == {4}


@pytest.mark.parametrize("flags", [("-t", "5"), ("-api", "async"), ("--images", "."), ("-b", "2"),
                                   ("-hint", "latency", "-nstreams", "2"), ("-nireq", "3")])
def test_tune_refuses_flags_it_would_ignore_before_timing(tune_ir, capsys, flags):
    code, _, err = _tune(capsys, tune_ir, *flags)
    one_clear_error((code, err))
    assert not tune_ir.with_name(tune_ir.stem + ".load_config.json").exists()


def test_tune_refuses_a_folder_where_the_config_goes_before_timing(tune_ir, capsys):
    folder = tune_ir.with_name(tune_ir.stem + ".load_config.json")
    folder.mkdir()
    code, out, err = _tune(capsys, tune_ir)
    one_clear_error((code, err), str(folder))
    assert "Tuning" not in out  # refused before the search, not after it
    assert folder.is_dir() and not list(folder.iterdir())


# ------------------------------------------------------------------------- killed writers' leftovers


def _dead_pid() -> int:
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_write_sweeps_dead_writers_locks_and_temporaries_of_other_names(tmp_path):
    from attnseg.atomic import atomic_dir, output_lock

    dead = _dead_pid()
    (tmp_path / ".exp_1.lock").write_text("")  # killed between creating and writing its lock
    (tmp_path / ".exp_2.lock").write_text(str(dead))
    stale = tmp_path / f".exp_2.{dead}.abcd1234.tmp"
    stale.mkdir()
    (stale / "model.bin").write_bytes(b"x")
    (tmp_path / ".notes.lock").write_text("a user's own file")  # not attnseg's: kept
    with output_lock(tmp_path / "exp_3"):  # a live writer's lock: kept by others' sweeps
        with atomic_dir(tmp_path / "exp_4") as tmp:
            (tmp / "a").write_text("x")
        assert (tmp_path / ".exp_3.lock").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".notes.lock", "exp_4"]


@pytest.mark.slow
def test_a_killed_export_leaves_nothing_once_another_name_is_written(tiny_ckpt, tmp_path):
    import signal

    from .conftest import run, start, wait_for

    proc = start("seg-export", tiny_ckpt, "-o", tmp_path / "exp_1", "--device", "CPU")
    wait_for(lambda: any((p / "model.onnx").exists() for p in tmp_path.glob(".exp_1.*.tmp")), proc,
             what="the export's temporary folder")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert leftovers(tmp_path), "the kill left nothing: the test proves nothing"
    res = run("seg-export", tiny_ckpt, "-o", tmp_path / "exp_2", "--device", "CPU")
    assert res.returncode == 0, res.stderr
    assert leftovers(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["exp_2"]


# ------------------------------------------------------------------- bare and wrapped state_dicts


@pytest.fixture(scope="module")
def bare_sd(tmp_path_factory):
    """A reference-style bare AttU_Net state_dict (width 4) and a Lightning checkpoint of it."""
    import torch

    from attnseg.models import create_model

    torch.manual_seed(0)
    sd = create_model("AttU_Net", base_width=4).state_dict()
    root = tmp_path_factory.mktemp("bare")
    torch.save(sd, root / "bare.pth")
    lightning = {"epoch": 3, "global_step": 30, "pytorch-lightning_version": "2.1.0",
                 "state_dict": {**{f"model.{k}": v for k, v in sd.items()},
                                "criterion.pos_weight": torch.tensor([1.0])}}
    torch.save(lightning, root / "lightning.ckpt")
    return {"sd": sd, "bare": root / "bare.pth", "lightning": root / "lightning.ckpt"}


def test_seg_eval_takes_arch_for_a_bare_state_dict(bare_sd, kvasir12, capsys):
    import json

    from attnseg.cli.evaluate import main

    args = (bare_sd["bare"], "--data", f"kvasir:{kvasir12}", "--split", "all", "--limit", "2",
            "--input-size", "64", "64", "--json")
    code, err = _code_err(capsys, main, *args)
    one_clear_error((code, err), "--arch")
    assert main([*map(str, args), "--arch", "AttU_Net"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 2


def test_seg_optimize_on_a_bare_state_dict_says_to_export_first_and_writes_nothing(bare_sd, tmp_path, capsys):
    import shutil

    from attnseg.cli.optimize import main

    ck = tmp_path / "bare.pth"
    shutil.copy(bare_sd["bare"], ck)
    code, err = _code_err(capsys, main, ck, "--precision", "fp16")
    one_clear_error((code, err), "seg-export", "--arch AttU_Net")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare.pth"]


def test_init_from_reads_a_lightning_checkpoint_like_export(bare_sd, kvasir12, tmp_path, capsys):
    import torch

    from attnseg.models import load_checkpoint

    load_checkpoint(bare_sd["lightning"], arch="AttU_Net")  # what seg-export loads ...
    out = tmp_path / "run"
    code, err = _train(capsys, kvasir12, out, "--init-from", bare_sd["lightning"])
    assert code == 0, err  # ... seg-train --init-from starts from
    trained = torch.load(out / "last.pt", weights_only=True)
    assert trained["trained_with"]["init_copied_tensors"] == len(bare_sd["sd"])
    assert trained["trained_with"]["init_fresh_tensors"] == 0


def test_a_wrapped_state_dict_missing_keys_is_reported_as_missing_at_its_own_width(bare_sd, tmp_path):
    import torch

    from attnseg.errors import CheckpointError
    from attnseg.models import load_checkpoint
    from attnseg.models.checkpoint import infer_arch_kwargs

    half = {k: v for i, (k, v) in enumerate(bare_sd["sd"].items()) if i % 2 or k.startswith("Conv_1x1")}
    half.pop("Conv1.conv.0.weight", None)
    assert infer_arch_kwargs("AttU_Net", half)["base_width"] == 4
    path = tmp_path / "wrapped.pth"
    torch.save({"model": {f"module.{k}": v for k, v in half.items()}, "optimizer": {}}, path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, arch="AttU_Net")
    assert "base_width=4" in str(err.value) and "missing" in str(err.value)
    assert "wrong shape" not in str(err.value), "the width was not inferred"


# --------------------------------------------------------------------------------- --package


@pytest.fixture(scope="module")
def tiny_package(tiny_ckpt, tmp_path_factory):
    import zipfile

    from attnseg.cli.export import main

    out = tmp_path_factory.mktemp("pkg") / "export"
    assert main([str(tiny_ckpt), "-o", str(out), "--package", "-q"]) == 0
    box = out.parent / "box"
    with zipfile.ZipFile(out / "package.zip") as z:
        z.extractall(box)
    return next(box.iterdir())


def test_the_package_readme_install_line_installs_attnseg_from_the_zip(tiny_package, tmp_path):
    import os
    import re
    import subprocess
    import sys

    readme = (tiny_package / "README.md").read_text()
    line = next(ln for ln in readme.splitlines() if "--no-deps" in ln)
    attnseg_part = re.search(r"pip install --no-deps (\S+)", line).group(1)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--target",
                    str(target), attnseg_part], cwd=tiny_package, check=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run([sys.executable, "-c", "import attnseg.runtime, attnseg; print(attnseg.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.strip().startswith(str(target))


def test_demo_skips_an_empty_image_and_still_writes_its_summary(tiny_package, kvasir12, tmp_path):
    import json
    import os
    import shutil
    import subprocess
    import sys

    images = tmp_path / "images"
    images.mkdir()
    for p in sorted((kvasir12 / "images").iterdir())[:2]:
        shutil.copy(p, images / p.name)
    (images / "0_empty.jpg").write_bytes(b"")  # first in order: the run must not stop here
    res = subprocess.run([sys.executable, "demo.py", str(images), "-o", str(tmp_path / "out")], cwd=tiny_package,
                         capture_output=True, text=True, timeout=300, check=False,
                         env={**os.environ, "PYTHONPATH": str(SRC)})
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [s["source"] for s in summary["skipped"]] == ["0_empty.jpg"]
    assert len(summary["results"]) == 2
    assert len(list((tmp_path / "out").glob("*_mask.png"))) == 2


@pytest.mark.slow
def test_an_export_folder_never_appears_without_its_package(tiny_ckpt, tmp_path):
    import signal

    from .conftest import start, wait_for

    out = tmp_path / "exp"
    proc = start("seg-export", tiny_ckpt, "-o", out, "--device", "CPU", "--package")
    wait_for(out.exists, proc, what="the export folder")
    proc.send_signal(signal.SIGKILL)  # killed as soon as the folder is published
    proc.wait()
    assert (out / "package.zip").is_file()


# ------------------------------------------------------------------------------------ full disks


def _tmpfs(path, size):
    import os

    from .test_disk_and_mounts import tmpfs

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    return tmpfs(path, size)


def test_a_full_disk_while_packaging_leaves_no_export_behind(wide_ckpt, tmp_path, capsys):
    from attnseg.cli.export import main

    # AttU_Net w8: the export (ONNX + IR, ~4.5 MB) fits in 5.5 MB, its package.zip (~2 MB more) does not
    with _tmpfs(tmp_path / "small", "5500k") as disk:
        code, err = _code_err(capsys, main, wide_ckpt, "-o", disk / "exp", "--package")
        one_clear_error((code, err), "no space left on device", str(disk / "exp" / "package.zip"))
        assert list(disk.iterdir()) == [], "a failed package left an export (or a partial zip) behind"


def test_an_iostream_error_while_saving_the_ir_is_named_a_full_disk(wide_ckpt, tmp_path):
    import openvino as ov

    from attnseg.atomic import DiskFullError, disk_full_guard
    from attnseg.export.to_openvino import save_ir
    from attnseg.models import load_checkpoint

    model, _ = load_checkpoint(wide_ckpt)
    import torch

    ov_model = ov.convert_model(model, example_input=torch.zeros(1, 3, 64, 64))
    with _tmpfs(tmp_path / "small", "1500k") as disk:  # the ~2.2 MB of weights do not fit
        with pytest.raises(DiskFullError, match="No space left on device"), disk_full_guard(disk, disk / "out"):
            save_ir(ov_model, disk / "model.xml", fp16=False)
        assert list(disk.iterdir()) == []


# ------------------------------------------------------------------------------- silent waits


def test_waiting_on_another_process_s_precision_cache_lock_says_who_and_what(tmp_path, caplog):
    import logging
    import os
    import subprocess
    import sys

    from attnseg.user_cache import JsonCache

    code = ("import sys; from pathlib import Path; from attnseg.user_cache import JsonCache\n"
            f"with JsonCache('precision.json', Path({str(tmp_path)!r})).locked():\n"
            "    print('held', flush=True); sys.stdin.readline()")
    holder = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(SRC)})
    try:
        assert holder.stdout.readline().strip() == "held"
        with caplog.at_level(logging.WARNING, logger="attnseg.user_cache"), \
                JsonCache("precision.json", tmp_path).locked(timeout_s=0.3):
            pass
    finally:
        holder.communicate("\n", timeout=60)
    waits = [r.getMessage() for r in caplog.records if "Waiting" in r.getMessage()]
    assert len(waits) == 1 and f"process {holder.pid}" in waits[0] and "precision.json" in waits[0]
