"""Lay an exported IR out as an OpenVINO Model Server repository.

``REPO/NAME/1/model.xml`` (+ ``.bin`` and the metadata JSON) and an entry in
``REPO/config.json`` (``model_config_list``; other models already listed are kept). The
``base_path`` is relative, which OVMS resolves against the config file's folder, so the
repository can be mounted anywhere (e.g. ``-v REPO:/models ... --config_path /models/config.json``).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from attnseg.atomic import atomic_dir, atomic_file, check_creatable
from attnseg.errors import InputFileError, ModelConfigError, OutputExistsError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_target(repo: str | Path, name: str, force: bool, output_dir: str | Path | None = None) -> Path:
    """Everything that could make writing ``REPO/NAME`` fail, checked before any work: the model
    name, the repository (a folder we may write, not inside or around the export's own ``-o``,
    which the export replaces), an existing entry (without ``force``) and ``config.json``."""
    if not _NAME.match(name or ""):
        raise ModelConfigError(f"Model name {name!r} must be letters, digits, '_', '-' or '.'.")
    repo = Path(repo)
    if repo.exists() and not repo.is_dir():
        raise InputFileError(f"OVMS repository {repo} is a file, not a folder.")
    target = repo / name
    if output_dir is not None:
        _check_apart(repo, target, Path(output_dir))
    check_creatable(repo, "the OVMS repository ", inside=True)
    if (repo / "config.json").exists():
        check_creatable(repo / "config.json", "the OVMS config ")
    if target.exists() and not force:
        raise OutputExistsError(f"{target} already exists in the OVMS repository; pass --force to replace it.")
    _read_config(repo / "config.json")  # a broken config is reported now, not after the export
    return target


def _check_apart(repo: Path, target: Path, out: Path) -> None:
    """The export folder is published (or, with --force, replaced) after the entry is written:
    a repository in it, or an entry around it, would be deleted by the export itself."""
    r, t, o = (p.resolve() for p in (repo, target, out))
    if r == o or o in r.parents or t == o or t in o.parents:
        raise InputFileError(
            f"--ovms-repo {repo} and -o {out} overlap: the export replaces {out} as a whole, which would "
            "take the repository entry with it. Give the repository its own folder (e.g. beside -o)."
        )


def write_repository(repo: str | Path, name: str, files: list[Path], device: str, force: bool) -> Path:
    """Copy ``files`` to ``REPO/NAME/1/`` and register ``NAME`` in ``REPO/config.json``."""
    repo = Path(repo)
    check_target(repo, name, force)
    config_path = repo / "config.json"
    config = _read_config(config_path)  # before the entry is published: never an unregistered model/1/
    repo.mkdir(parents=True, exist_ok=True)
    with atomic_dir(repo / name, force=force) as tmp:
        version = tmp / "1"
        version.mkdir()
        for f in files:
            shutil.copy2(f, version / f.name)
    entries = [e for e in config.setdefault("model_config_list", []) if e.get("config", {}).get("name") != name]
    entries.append({"config": {"name": name, "base_path": name, "target_device": device}})
    config["model_config_list"] = entries
    with atomic_file(config_path) as tmp_cfg:
        tmp_cfg.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return repo / name


def _read_config(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"model_config_list": []}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise InputFileError(f"{path} is not a readable OVMS config ({exc}); fix or remove it.") from None
    if not isinstance(config, dict) or not isinstance(config.get("model_config_list", []), list):
        raise InputFileError(f"{path} has no model_config_list list; fix or remove it.")
    bad = [i for i, e in enumerate(config.get("model_config_list", []))
           if not isinstance(e, dict) or not isinstance(e.get("config", {}), dict)]
    if bad:
        raise InputFileError(f"{path}: model_config_list entry {bad[0]} is not an object "
                             '{"config": {"name": ..., "base_path": ...}}; fix or remove it.')
    return config
