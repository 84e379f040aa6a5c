"""Every seg-* parser derives from the Python API.

- Runtime flags (device, hint, streams, requests, cache, precision, resize policy, config file,
  tta) are generated from ``RuntimeOptions`` in every front end: same names, defaults, choices.
- Other flags that set an API parameter or config field default to the API's own default, and
  each choice list is the API's vocabulary.
- Every old spelling still parses for one release and says on stderr what replaces it.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect

import pytest

from attnseg.cli.common import flag_name
from attnseg.runtime.options import RuntimeOptions

#: front ends whose runtime flags must be RuntimeOptions' (seg-infer --ray is seg-infer's parser)
RUNTIME_FRONT_ENDS = ["infer", "evaluate", "benchmark", "serve"]

#: (CLI module, API object) pairs; flags whose dest names an API parameter / field are checked.
PAIRS = [
    ("train", "attnseg.train:TrainConfig"),
    ("export", "attnseg.export:export"),
    ("export", "attnseg.export:AdvancedExportParameters"),
    ("optimize", "attnseg.optimize:quantize"),
    ("optimize", "attnseg.optimize:AdvancedQuantizationParameters"),
    ("benchmark", "attnseg.benchmarking:BenchmarkConfig"),
    ("serve", "attnseg.serve.server:ServeOptions"),
]
#: flag dest -> API name where they differ
RENAMED = {"infer_precision": "inference_precision"}
#: deliberate differences, each with its reason
EXEMPT = {
    ("serve", "models"): "MODEL is a required positional argument; ServeOptions() starts empty",
}
#: flag dest -> the API vocabulary its choices must equal
VOCABULARY = {
    ("export", "precision"): "attnseg.export.options:Precision",
    ("export", "output_kind"): "attnseg.export.options:OutputKind",
    ("export", "via"): "attnseg.export.options:Route",
    ("optimize", "precision"): "attnseg.optimize.options:OptimizePrecision",
    ("optimize", "preset"): "attnseg.optimize.options:Preset",
    ("optimize", "metric"): "attnseg.optimize.options:Metric",
    ("benchmark", "hint"): "attnseg.runtime.options:Hint",
    ("benchmark", "api"): "attnseg.benchmarking.config:Api",
    ("benchmark", "report_type"): "attnseg.benchmarking.config:ReportType",
}
#: (CLI, old argv, dest, value it must give, the spelling that replaces it)
DEPRECATED = [
    ("infer", ["--infer-precision", "bf16"], "inference_precision", "bf16", "--inference-precision"),
    ("infer", ["-infer_precision", "f32"], "inference_precision", "f32", "--inference-precision"),
    ("evaluate", ["--infer-precision", "f32"], "inference_precision", "f32", "--inference-precision"),
    ("evaluate", ["--split-name", "val"], "split_name", "val", "--split FILE:NAME"),
    ("optimize", ["--split-name", "val"], "split_name", "val", "--split FILE:NAME"),
    ("benchmark", ["-infer_precision", "bf16"], "inference_precision", "bf16", "--inference-precision"),
    ("benchmark", ["--report-folder", "r"], "output", "r", "-o/--output"),
    ("benchmark", ["-report_folder", "r"], "output", "r", "-o/--output"),
    ("benchmark", ["--report_folder", "r"], "output", "r", "-o/--output"),
    ("benchmark_compare", ["--split-name", "val"], "split_name", "val", "--split FILE:NAME"),
    ("export", ["--output-dir", "d"], "output_dir", "d", "-o/--output"),
    ("export", ["--output", "mask"], "output_kind", "mask", "--output-kind mask"),
    ("train", ["--precision", "bf16"], "precision", "bf16", "--training-precision"),
    ("serve", ["--infer-precision", "f32"], "inference_precision", "f32", "--inference-precision"),
]
#: positional arguments each parser needs before flags parse
POSITIONAL = {"infer": ["m.xml", "in"], "benchmark": ["m.xml"], "evaluate": ["ck.pt", "--data", "x:y"],
              "serve": ["m.xml"], "benchmark_compare": ["ck.pt"], "export": [], "optimize": ["m.xml"], "train": ["--data", "x:y", "-o", "o"]}


def _load(spec: str):
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _api_defaults(obj) -> dict:
    if dataclasses.is_dataclass(obj):
        out = {}
        for f in dataclasses.fields(obj):
            if f.default is not dataclasses.MISSING:
                out[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                out[f.name] = f.default_factory()
        return out
    params = inspect.signature(obj).parameters
    return {n: p.default for n, p in params.items() if p.default is not inspect.Parameter.empty}


def _plain(value):
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _parser(cli: str):
    if cli == "benchmark_compare":
        return importlib.import_module("attnseg.cli.benchmark").build_compare_parser()
    return importlib.import_module(f"attnseg.cli.{cli}").build_parser()


def _visible(parser) -> dict:
    """dest -> the action --help shows for it (hidden deprecated aliases left out)."""
    import argparse

    return {a.dest: a for a in parser._actions if a.help is not argparse.SUPPRESS}


@pytest.mark.parametrize("cli", RUNTIME_FRONT_ENDS)
def test_runtime_flags_are_generated_from_runtime_options(cli):
    actions = _visible(_parser(cli))
    wrong = []
    for f in dataclasses.fields(RuntimeOptions):
        meta = f.metadata
        action = actions.get(f.name)
        if action is None:
            wrong.append(f"{flag_name(f.name)} missing")
            continue
        names = {flag_name(f.name), *meta["aliases"]}
        if not names <= set(action.option_strings):
            wrong.append(f"{f.name}: spelled {action.option_strings}, expected {sorted(names)}")
        if _plain(action.default) != _plain(f.default):
            wrong.append(f"{f.name}: default {action.default!r}, RuntimeOptions {f.default!r}")
        kw = meta["argparse"]
        if tuple(action.choices or ()) != tuple(kw.get("choices", ())):
            wrong.append(f"{f.name}: choices {action.choices}, RuntimeOptions {kw.get('choices')}")
        if action.type is not kw.get("type"):
            wrong.append(f"{f.name}: type {action.type}, RuntimeOptions {kw.get('type')}")
    assert not wrong, f"seg-{cli} drifted from RuntimeOptions: " + "; ".join(wrong)


#: every seg-* parser; a runtime flag outside RUNTIME_FRONT_ENDS must still be spelled and defaulted
#: as RuntimeOptions' (seg-export and seg-optimize compile on -d/--device; seg-export has --cache-dir)
ALL_COMMANDS = ["train", "evaluate", "export", "optimize", "infer", "benchmark", "benchmark_compare", "serve"]


@pytest.mark.parametrize("cli", ALL_COMMANDS)
def test_every_runtime_flag_anywhere_has_runtime_options_spelling_and_default(cli):
    fields = {f.name: f for f in dataclasses.fields(RuntimeOptions)}
    wrong = []
    for dest, action in _visible(_parser(cli)).items():
        f = fields.get(dest)
        if f is None:
            continue
        names = {flag_name(f.name), *f.metadata["aliases"]}
        if not names <= set(action.option_strings):
            wrong.append(f"{dest}: spelled {action.option_strings}, expected {sorted(names)}")
        if _plain(action.default) != _plain(f.default):
            wrong.append(f"{dest}: default {action.default!r}, RuntimeOptions {f.default!r}")
    assert not wrong, f"seg-{cli}: " + "; ".join(wrong)


@pytest.mark.parametrize("cli", RUNTIME_FRONT_ENDS)
def test_runtime_flags_build_runtime_options_back(cli):
    from attnseg.cli.common import options_from_args

    args = _parser(cli).parse_args([*POSITIONAL[cli], "-d", "CPU", "--hint", "throughput", "--num-streams", "2",
                                    "--inference-precision", "f32", "--resize-policy", "letterbox", "--tta", "flip"])
    assert options_from_args(RuntimeOptions, args) == RuntimeOptions(
        hint="throughput", num_streams=2, inference_precision="f32", resize_policy="letterbox", tta="flip")


@pytest.mark.parametrize("cli, argv, dest, value, new", DEPRECATED,
                         ids=[f"{c}:{a[0]}" for c, a, *_ in DEPRECATED])
def test_deprecated_spellings_parse_and_warn(cli, argv, dest, value, new, capsys):
    args = _parser(cli).parse_args([*POSITIONAL[cli], *argv])
    assert _plain(getattr(args, dest)) == value
    err = capsys.readouterr().err
    assert argv[0] in err and "is deprecated" in err and new in err, err


@pytest.mark.parametrize("cli, api", PAIRS)
def test_flag_defaults_are_the_api_defaults(cli, api):
    defaults = _api_defaults(_load(api))
    checked, wrong = [], []
    for action in _visible(_parser(cli)).values():
        name = RENAMED.get(action.dest, action.dest)
        if name not in defaults or (cli, action.dest) in EXEMPT:
            continue
        checked.append(action.dest)
        if _plain(action.default) != _plain(defaults[name]):
            wrong.append(f"--{action.dest}: CLI {action.default!r}, API {defaults[name]!r}")
    assert checked, f"seg-{cli} has no flag mapped to {api}"
    assert not wrong, f"seg-{cli} drifted from {api}: " + "; ".join(wrong)


@pytest.mark.parametrize("cli, dest", sorted(VOCABULARY))
def test_choices_are_the_api_vocabulary(cli, dest):
    vocabulary = _load(VOCABULARY[(cli, dest)])
    values = [m.value for m in vocabulary] if isinstance(vocabulary, type) else list(vocabulary)
    from attnseg.runtime.options import HINT_ALIASES

    action = next(a for a in _parser(cli)._actions if a.dest == dest)
    assert [str(c) for c in action.choices if c not in HINT_ALIASES] == values


def test_output_means_where_results_go_in_every_command():
    """-o/--output names the output folder everywhere; seg-export's old --output KIND still sets the kind."""
    for cli in ("train", "export", "optimize", "infer", "benchmark", "benchmark_compare"):
        action = _parser(cli)._option_string_actions.get("-o")
        assert action is not None and "--output" in action.option_strings, cli
    args = _parser("export").parse_args(["--output", "out/"])
    assert (args.output_dir, args.output_kind) == ("out/", "logits")


def test_split_is_file_colon_name_everywhere(capsys):
    from attnseg.cli.common import split_from_args
    from attnseg.errors import InvalidOptionError

    def split(cli, *argv, required=False):
        return split_from_args(_parser(cli).parse_args([*POSITIONAL[cli], *argv]), "test", required)

    assert split("evaluate", "--split", "runs/a/split.json:val") == ("runs/a/split.json", "val")
    assert split("evaluate", "--split", "runs/a/split.json") == ("runs/a/split.json", "test")
    assert split("evaluate", "--split", "all") == (None, "all")
    assert split("evaluate", "--split", "s.json", "--split-name", "val") == ("s.json", "val")
    with pytest.raises(InvalidOptionError, match="FILE:NAME"):
        split("optimize", "--split", "train", required=True)  # no split file: not silently every image
    with pytest.raises(InvalidOptionError, match="--split-name"):
        split("evaluate", "--split", "s.json:val", "--split-name", "test")


def test_exempt_flags_still_exist():
    for cli, dest in EXEMPT:
        assert any(a.dest == dest for a in _parser(cli)._actions), (cli, dest)
