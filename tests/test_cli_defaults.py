"""Every seg-* parser derives from the Python API: each flag that sets an API parameter or
config field defaults to the API's own default, and each choice list is the API's vocabulary."""

from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect

import pytest

#: (CLI module, API object) pairs; flags whose dest names an API parameter / field are checked.
PAIRS = [
    ("train", "attnseg.train:TrainConfig"),
    ("export", "attnseg.export:export"),
    ("export", "attnseg.export:AdvancedExportParameters"),
    ("optimize", "attnseg.optimize:quantize"),
    ("optimize", "attnseg.optimize:AdvancedQuantizationParameters"),
    ("benchmark", "attnseg.benchmarks:BenchmarkConfig"),
    ("infer", "attnseg.runtime:Segmenter"),
    ("serve", "attnseg.runtime:Segmenter"),
]
#: flag dest -> API name where they differ
RENAMED = {"infer_precision": "inference_precision"}
#: deliberate differences, each with its reason
EXEMPT = {
    ("infer", "hint"): "seg-infer picks latency for one image / camera, throughput for folders and videos",
    ("serve", "hint"): "a server answers many clients at once: throughput",
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
    ("benchmark", "api"): "attnseg.benchmarks.config:Api",
    ("benchmark", "report_type"): "attnseg.benchmarks.config:ReportType",
    ("infer", "hint"): "attnseg.runtime.options:Hint",
    ("infer", "infer_precision"): "attnseg.runtime.options:INFERENCE_PRECISIONS",
    ("infer", "resize_policy"): "attnseg.metadata:RESIZE_POLICIES",
    ("serve", "hint"): "attnseg.runtime.options:Hint",
    ("serve", "inference_precision"): "attnseg.runtime.options:INFERENCE_PRECISIONS",
}


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
    return importlib.import_module(f"attnseg.cli.{cli}").build_parser()


@pytest.mark.parametrize("cli, api", PAIRS)
def test_flag_defaults_are_the_api_defaults(cli, api):
    defaults = _api_defaults(_load(api))
    checked, wrong = [], []
    for action in _parser(cli)._actions:
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


def test_exempt_flags_still_exist():
    for cli, dest in EXEMPT:
        assert any(a.dest == dest for a in _parser(cli)._actions), (cli, dest)
