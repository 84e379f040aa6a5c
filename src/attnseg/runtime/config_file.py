"""The tuned configuration beside an IR: ``model.xml`` -> ``model.load_config.json``.

``seg-benchmark --tune model.xml`` writes the fastest configuration it found in
benchmark_app's ``-load_config`` format, ``{"CPU": {"INFERENCE_PRECISION_HINT": "bf16",
"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": "2", ...}}``, so
``benchmark_app -m model.xml -load_config model.load_config.json`` reproduces the run and
``Segmenter`` (hence ``seg-infer`` and ``seg-serve``) starts from it. The file holds plain
property values only; nothing in it is executed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attnseg.atomic import atomic_file
from attnseg.errors import InputFileError

SUFFIX = ".load_config.json"
#: properties tuned for one performance hint; dropped when the caller asks for another hint.
HINT_BOUND = ("PERFORMANCE_HINT", "NUM_STREAMS", "PERFORMANCE_HINT_NUM_REQUESTS")


def tuned_config_path(xml_path: str | Path) -> Path:
    xml = Path(xml_path)
    return xml.with_name(xml.stem + SUFFIX)


def read_tuned_config(xml_path: str | Path, device: str) -> dict[str, str]:
    """The section for ``device`` of the file beside ``xml_path`` ({} if there is none)."""
    path = tuned_config_path(xml_path)
    return read_config_file(path, device) if path.is_file() else {}


def read_config_file(path: str | Path, device: str) -> dict[str, str]:
    """The section for ``device`` of a ``-load_config`` JSON file ({} if it has none)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"Config file {path} does not exist; give a JSON file such as "
                             '{"CPU": {"NUM_STREAMS": "2"}} (seg-benchmark --tune writes MODEL.load_config.json).')
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{path} is not readable JSON ({exc}); fix or delete it (seg-benchmark --tune "
                             "writes it).") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise InputFileError(f"{path} must map device names to property objects, e.g. "
                             '{"CPU": {"INFERENCE_PRECISION_HINT": "f32"}}.')
    section = data.get(device, {})
    bad = [k for k, v in section.items() if not isinstance(k, str) or not isinstance(v, (str, int, float, bool))]
    if bad:
        raise InputFileError(f"{path}: property {bad[0]!r} of {device} must be a plain value.")
    return {k: _plain(v) for k, v in section.items()}


def write_tuned_config(xml_path: str | Path, device: str, properties: Mapping[str, Any]) -> Path:
    """Write (or replace) ``device``'s section beside ``xml_path``; other devices' sections stay."""
    path = tuned_config_path(xml_path)
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            loaded = json.loads(path.read_text())
            data = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            data = {}
    data[device] = {k: _plain(v) for k, v in properties.items()}
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def applicable(tuned: Mapping[str, str], hint: str | None) -> dict[str, str]:
    """The tuned properties that apply when the caller asks for ``hint`` (None: the file's own)."""
    props = dict(tuned)
    if hint is not None and props.get("PERFORMANCE_HINT", hint.upper()) != hint.upper():
        for key in HINT_BOUND:
            props.pop(key, None)
    return props


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "YES" if value else "NO"
    return str(value)
