"""Which IRs to serve, and under which names: ``.xml`` files, model folders, OVMS repositories.

``seg-export --ovms-repo REPO --name NAME`` writes ``REPO/config.json`` (``model_config_list``)
and ``REPO/NAME/<version>/model.xml``. Given ``REPO`` every listed model is served under its
configured name (newest numeric version); given ``REPO/NAME`` that one model; given a folder
with one IR (or ``model.xml``) or an ``.xml`` file, that IR under ``--name`` or a derived name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from attnseg.errors import InputFileError, ModelConfigError
from attnseg.runtime.adapter import resolve_model_path

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class ServedModel:
    name: str
    xml: Path


def resolve_models(paths: list[str | Path], name: str | None = None) -> list[ServedModel]:
    """Every model to serve; one error naming the problem (duplicate name, bad path...)."""
    found: list[ServedModel] = []
    for p in paths:
        found += _expand(Path(p).expanduser())
    if name is not None:
        if len(found) != 1:
            raise ModelConfigError(f"--name names one model, but {len(found)} were given; "
                                   "drop --name to use each model's own name.")
        found = [ServedModel(name, found[0].xml)]
    for m in found:
        if not _NAME.match(m.name):
            raise ModelConfigError(f"Model name {m.name!r} must be letters, digits, '_', '-' or '.'.")
    names = [m.name for m in found]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ModelConfigError(f"Two models would be served as {', '.join(dupes)}; pass one model with --name, "
                               "or rename the files.")
    if not found:
        raise InputFileError("No model to serve.")
    return found


def _expand(path: Path) -> list[ServedModel]:
    if path.is_dir() and (path / "config.json").is_file():
        return _from_ovms_config(path)
    if path.is_dir() and not list(path.glob("*.xml")):
        versions = _versions(path)
        if versions:
            return [ServedModel(path.name, resolve_model_path(versions[-1]))]
    xml = resolve_model_path(path)
    return [ServedModel(default_name(xml), xml)]


def _versions(model_dir: Path) -> list[Path]:
    """OVMS version folders (numeric names), oldest first."""
    return sorted((d for d in model_dir.iterdir() if d.is_dir() and d.name.isdigit()), key=lambda d: int(d.name))


def _from_ovms_config(repo: Path) -> list[ServedModel]:
    cfg_path = repo / "config.json"
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        entries = [e["config"] for e in cfg["model_config_list"]]
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise InputFileError(f"{cfg_path} is not an OVMS config with a model_config_list ({exc}).") from None
    models = []
    for e in entries:
        base = Path(e.get("base_path", e.get("name", "")))
        model_dir = base if base.is_absolute() else repo / base
        if not model_dir.is_dir():
            raise InputFileError(f"{cfg_path}: model {e.get('name')!r} has no folder {model_dir}.")
        versions = _versions(model_dir)
        if not versions:
            raise InputFileError(f"{model_dir} has no numeric version folder (e.g. 1/model.xml).")
        models.append(ServedModel(str(e.get("name") or model_dir.name), resolve_model_path(versions[-1])))
    return models


def default_name(xml: Path) -> str:
    """``polyps.xml`` -> ``polyps``; ``model.xml`` -> its folder's name (``exported/model.xml`` -> ``exported``)."""
    stem = xml.stem
    if stem != "model":
        return stem
    parent = xml.parent.name
    return parent if parent and not parent.isdigit() else "model"
