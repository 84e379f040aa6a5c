"""seg-infer --ray refusals that come before any Ray start: one line, non-zero exit, nothing written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from attnseg.atomic import OutputBusyError
from attnseg.cli.infer import build_parser, main
from attnseg.cli.infer_ray import uri_or_path
from attnseg.cluster import ClusterError, ClusterOptions, check_address, segment_dataset
from attnseg.errors import InputFileError


@pytest.fixture
def folder(kvasir_60, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    for p in sorted(kvasir_60.iterdir())[:2]:
        shutil.copy(p, d / p.name)
    return d


def test_ray_flag_parses_address_or_local():
    p = build_parser()
    assert p.parse_args(["m.xml", "in"]).ray is None
    assert p.parse_args(["m.xml", "in", "--ray"]).ray == "local"
    assert p.parse_args(["m.xml", "in", "--ray", "auto", "--concurrency", "3"]).ray == "auto"
    assert p.parse_args(["m.xml", "in", "--ray", "ray://10.0.0.1:10001"]).ray == "ray://10.0.0.1:10001"


@pytest.mark.parametrize("flags, message", [
    (["--hint", "throughput"], "--hint do(es) not apply with --ray"),
    (["--max-in-flight", "4"], "--max-in-flight do(es) not apply with --ray"),
    (["--concurrency", "0"], "--concurrency must be >= 1"),
])
def test_local_only_flags_and_bad_counts_are_refused(cluster_ir, folder, tmp_path, capsys, flags, message):
    out = tmp_path / "out"
    assert main([str(cluster_ir), str(folder), "-o", str(out), "--ray", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_an_output_folder_not_made_by_ray_is_not_mixed_into(cluster_ir, folder, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert main([str(cluster_ir), str(folder), "-o", str(out), "--ray"]) == 2
    assert "holds no manifest.jsonl of an earlier --ray run; pass --force" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]


def test_ray_client_addresses_are_refused_with_how_to_run(cluster_ir, folder, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert main([str(cluster_ir), str(folder), "-o", str(out), "--ray", "ray://10.0.0.1:10001"]) == 2
    err = capsys.readouterr().err
    assert "Ray Data does not run over Ray Client" in err and "ray job submit" in err and "--ray auto" in err
    assert "Traceback" not in err and not out.exists()
    monkeypatch.setenv("RAY_ADDRESS", "ray://10.0.0.1:10001")
    with pytest.raises(ClusterError, match="RAY_ADDRESS=ray://"):
        check_address("auto")
    check_address("local")  # a private instance ignores RAY_ADDRESS


def test_object_storage_is_refused_by_local_seg_infer_and_kept_by_ray(cluster_ir, folder, tmp_path, capsys,
                                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([str(cluster_ir), str(folder), "-o", "s3://bucket/out"]) == 2
    err = capsys.readouterr().err
    assert "-o s3://bucket/out is in object storage" in err and "--ray" in err
    assert not (tmp_path / "s3:").exists()
    assert main([str(cluster_ir), "s3://bucket/in", "-o", str(tmp_path / "o")]) == 2
    assert "input s3://bucket/in is in object storage" in capsys.readouterr().err
    args = build_parser().parse_args([str(cluster_ir), "in", "-o", "s3://bucket/out", "--ray"])
    assert uri_or_path(args.output) == "s3://bucket/out" and uri_or_path(Path("gs://b/k/x")) == "gs://b/k/x"
    assert uri_or_path(Path("plain/out")) == "plain/out"


def test_one_stem_two_images_is_refused_locally_and_on_ray(cluster_ir, folder, tmp_path, capsys):
    first = min(folder.iterdir())
    shutil.copy(first, first.with_suffix(".png"))
    for ray_flags in ([], ["--ray"]):
        out = tmp_path / f"out{len(ray_flags)}"
        assert main([str(cluster_ir), str(folder), "-o", str(out), *ray_flags]) == 2
        err = capsys.readouterr().err
        assert f"would both write masks/{first.stem}.png" in err and "rename one" in err, err
        assert not out.exists()


def test_the_lock_holds_for_every_path_to_the_same_folder(cluster_ir, folder, tmp_path, capsys):
    from attnseg.atomic import output_lock

    real = tmp_path / "real" / "out"
    real.parent.mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    with output_lock(real):
        assert main([str(cluster_ir), str(folder), "-o", str(tmp_path / "alias" / "out"), "--ray"]) == 2
        assert "right now; wait for it to finish" in capsys.readouterr().err
        with pytest.raises(OutputBusyError):
            segment_dataset(cluster_ir, folder, tmp_path / "alias" / ".." / "real" / "out")
    assert not real.exists()


def test_missing_input_and_model_fail_before_ray(cluster_ir, tmp_path, capsys):
    assert main([str(cluster_ir), str(tmp_path / "nope"), "-o", str(tmp_path / "o"), "--ray"]) == 2
    assert "does not exist (give a folder, a glob" in capsys.readouterr().err
    assert main([str(tmp_path / "m.xml"), str(tmp_path), "-o", str(tmp_path / "o"), "--ray"]) == 2
    assert "Model" in capsys.readouterr().err


def test_options_are_checked():
    with pytest.raises(InputFileError, match="concurrency must be >= 1"):
        ClusterOptions(concurrency=0)
    with pytest.raises(InputFileError, match="batch_size must be >= 1"):
        ClusterOptions(batch_size=0)
    with pytest.raises(InputFileError, match="Ray address is empty"):
        ClusterOptions(address=" ")
