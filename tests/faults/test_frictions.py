"""A newcomer's frictions: CLI basics, HybridSN flags, words and units, our own warnings."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

from .conftest import COMMANDS, env

CLI = ["seg-train", "seg-eval", "seg-export", "seg-optimize", "seg-infer", "seg-benchmark"]


def _main(name):
    import importlib

    return importlib.import_module(f"attnseg.cli.{COMMANDS[name]}").main


@pytest.mark.parametrize("name", CLI)
def test_every_command_has_help_with_an_example_and_a_version(name, capsys):
    from attnseg import __version__

    assert _exit_code(name, ["--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"\n  {name} " in out
    assert _exit_code(name, ["--version"]) == 0 and __version__ in capsys.readouterr().out


def _exit_code(name, argv):
    try:
        return _main(name)(argv)
    except SystemExit as exc:  # argparse's --help / --version
        return exc.code


def test_seg_train_help_shows_defaults_and_the_architectures(capsys):
    from attnseg.models import list_models

    with pytest.raises(SystemExit):
        _main("seg-train")(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: 30)" in out and "(default: 0.001)" in out and "(default: AttU_Net)" in out
    assert all(m in out for m in list_models())


def test_python_m_attnseg_lists_the_commands_and_runs_them():
    res = subprocess.run([sys.executable, "-m", "attnseg"], capture_output=True, text=True, env=env(), check=False)
    assert res.returncode == 0
    for cmd in ("train", "eval", "export", "optimize", "infer", "benchmark", "serve", "models"):
        assert f"\n  {cmd} " in res.stdout
    res = subprocess.run([sys.executable, "-m", "attnseg", "models"], capture_output=True, text=True, env=env(),
                         check=False)
    assert res.returncode == 0 and "AttU_Net" in res.stdout and "HybridSN" in res.stdout
    res = subprocess.run([sys.executable, "-m", "attnseg", "train", "--list-models"], capture_output=True, text=True,
                         env=env(), check=False)
    assert res.returncode == 0 and "SE_UNet" in res.stdout


@pytest.mark.slow
def test_hybridsn_honours_max_train_batches_writes_last_pt_and_plots_quietly(shared_data, tmp_path):
    from attnseg.cli.train import main as seg_train

    out = tmp_path / "ip"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = seg_train(["--data", f"indian-pines:{shared_data / 'indian-pines'}", "-o", str(out), "--arch",
                          "HybridSN", "--epochs", "2", "--max-train-batches", "2", "--batch-size", "8",
                          "--patch-size", "11", "--bands", "16", "--threads", "1", "-q"])
    assert code == 0
    assert (out / "last.pt").is_file() and (out / "best.pt").is_file()
    rows = json.loads((out / "history.json").read_text())
    assert [r["train_batches"] for r in rows] == [2, 2]
    assert not [w for w in caught if "No artists" in str(w.message)]


def test_benchmark_console_is_always_in_milliseconds():
    from attnseg.benchmarking.report import _console_latency

    assert _console_latency(0.25, 0.3).endswith(" ms") and _console_latency(25.0, 30.0).endswith(" ms")
    assert _console_latency(0.25, 0.3) == "0.250 ms"


def test_optimize_report_label_is_readable():
    from attnseg.optimize.report import _latency_label

    assert _latency_label("CPU", "bf16", "bf16") == \
        "median latency, ms (CPU, batch 1; OpenVINO computed in bf16 for both models)"


def test_main_job_ratio_is_a_speedup_like_compare():
    from attnseg.jobs.main_job import BackendFigures, MainJobResult, format_table

    rows = [BackendFigures("OpenVINO FP32", 0.8, 3, 20.0, 20.0, 19.0, 21.0, 50.0, 10),
            BackendFigures("OpenVINO INT8", 0.8, 3, 5.0, 5.0, 4.0, 6.0, 200.0, 10)]
    table = format_table(MainJobResult(None, None, None, {}, rows, 3, "CPU"))
    assert "speedup vs FP32 IR" in table
    int8 = next(line for line in table.splitlines() if line.startswith("OpenVINO INT8"))
    assert int8.rstrip().endswith("4.00x")  # 20 ms / 5 ms: faster is above 1, as compare's "Speedup"


def test_compare_plots_warn_nothing_and_label_each_log_decade_once():
    pytest.importorskip("matplotlib")
    from types import SimpleNamespace

    from matplotlib.figure import Figure

    from attnseg.benchmarking import LatencyStats
    from attnseg.benchmarking.compare.plots import _log_if_wide, make_plots
    from attnseg.benchmarking.compare.result import BackendResult

    backends = [BackendResult(name=n, label=n, samples_ms=list(v), speedup=1.0,
                              latency=LatencyStats.from_samples(list(v))) for n, v in
                (("torch", np.linspace(500, 540, 5)), ("int8", np.linspace(8, 9, 5)))]
    result = SimpleNamespace(backends=backends, baseline="torch", accuracy_metric=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plots = make_plots(result)
    assert plots["latency"]
    ax = Figure().add_subplot()
    ax.plot([8, 540], [1, 1])
    _log_if_wide(ax, [8, 540])
    labels = [t.get_text() for t in ax.get_xticklabels(minor=True) if t.get_text()]
    assert labels == []  # minor ticks unlabelled: nothing overlaps


def test_se_unet_exports_without_tracer_warnings(tmp_path):
    import torch

    from attnseg.models import create_model

    model = create_model("SE_UNet", n_channels=3, n_classes=1, base_width=4).eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.jit.trace(model, torch.zeros(1, 3, 64, 64))
    assert not [w for w in caught if "se_unet.py" in str(w.filename)], [str(w.message) for w in caught]


def test_export_error_names_the_python_argument(tmp_path, tiny_ckpt):
    from attnseg.errors import InputFileError
    from attnseg.export import export

    with pytest.raises(InputFileError, match=r"samples='.*nowhere' \(seg-export --samples\)"):
        export(tiny_ckpt, output_dir=tmp_path / "o", samples=tmp_path / "nowhere")


def test_empty_validation_axes_do_not_warn(tmp_path):
    from attnseg.train.history import plot_curves

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plot_curves([{"epoch": 1, "train_loss": 1.0}, {"epoch": 2, "train_loss": 0.5}], tmp_path / "c.png")
    assert not [w for w in caught if "No artists" in str(w.message)]
    assert (tmp_path / "c.png").stat().st_size > 0
