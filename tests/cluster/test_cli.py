"""seg-infer --ray refusals that come before any Ray start: one line, non-zero exit, nothing written."""

from __future__ import annotations

import shutil

import pytest

from attnseg.cli.infer import build_parser, main
from attnseg.cluster import ClusterOptions
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
