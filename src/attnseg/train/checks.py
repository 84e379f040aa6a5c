"""Everything about a training request that can be checked before a file is written or a
sample decoded: counts, rates, sizes, the architecture, the output path and ``--resume``.

A run refused here leaves nothing behind; one that passes cannot fail later on these grounds.
"""

from __future__ import annotations

import math
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from attnseg.errors import InputFileError, InvalidOptionError, ModelConfigError

#: The fields that decide what model a run trains; ``--resume`` takes them from the checkpoint.
RUN_DEFINING = ("arch", "base_width", "arch_kwargs", "input_size", "input_interpolation")


def _positive_int(value: Any, flag: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelConfigError(f"{flag} must be a positive integer, got {value!r}.")


def _finite(value: Any, flag: str, *, low: float, low_ok: bool, high: float | None = None) -> None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ModelConfigError(f"{flag} must be a number, got {value!r}.") from None
    too_low = v < low or (v == low and not low_ok)
    if not math.isfinite(v) or too_low or (high is not None and v > high):
        rng = f"{'>=' if low_ok else '>'} {low:g}" + (f" and <= {high:g}" if high is not None else "")
        raise ModelConfigError(f"{flag} must be a finite number {rng}, got {value!r}.")


def check_counts(cfg) -> None:
    """Counts and rates of a segmentation or hyperspectral config (``TrainConfig`` or alike)."""
    _positive_int(cfg.epochs, "--epochs")
    _positive_int(cfg.batch_size, "--batch-size")
    _finite(cfg.lr, "--lr", low=0.0, low_ok=False, high=10.0)
    _finite(cfg.weight_decay, "--weight-decay", low=0.0, low_ok=True)
    if getattr(cfg, "max_train_batches", None) is not None:
        _positive_int(cfg.max_train_batches, "--max-train-batches")
    if getattr(cfg, "threads", None) is not None:
        _positive_int(cfg.threads, "--threads")
    workers = getattr(cfg, "workers", 0)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ModelConfigError(f"--workers must be 0 or more, got {workers!r}.")


def check_output_dir(path: str | Path, force: bool = False, resume: str | None = None) -> None:
    """A run folder may exist (resume, reuse of its split) but must be a folder we can write,
    and a run already in it is only replaced with ``force`` (``train.run_folder``)."""
    from attnseg.atomic import check_creatable
    from attnseg.train.run_folder import check_not_overwriting

    out = Path(path)
    if out.exists() and not out.is_dir():
        raise InputFileError(f"-o {out} is a file; name a folder for the run.")
    check_creatable(out, "the run folder ", inside=True)
    check_not_overwriting(out, force=force, resume=resume)


def check_train_config(cfg) -> None:
    """Every cheap check of a ``TrainConfig``; raises one clear error naming the flag."""
    from attnseg.imaging import parse_size
    from attnseg.models import get_model_class, model_capabilities
    from attnseg.models.base import nearest_valid_sizes

    check_counts(cfg)
    _finite(cfg.val_fraction, "--val-fraction", low=0.0, low_ok=False, high=0.9)
    _finite(cfg.augmentation_prob, "--augmentation-prob", low=0.0, low_ok=True, high=1.0)
    _finite(getattr(cfg, "tile_crop_prob", 0.0), "--tile-crop-prob", low=0.0, low_ok=True, high=1.0)
    if getattr(cfg, "ema", None) is not None:
        _finite(cfg.ema, "--ema", low=0.0, low_ok=False, high=0.99999)
    if isinstance(cfg.test_count, bool) or not isinstance(cfg.test_count, int) or cfg.test_count < 0:
        raise ModelConfigError(f"--test-count must be 0 or more, got {cfg.test_count!r}.")
    _positive_int(cfg.base_width, "--base-width")
    if hasattr(cfg, "input_interpolation"):
        from attnseg.metadata import check_interpolation

        try:
            check_interpolation(cfg.input_interpolation, field_name="--input-interpolation")
        except InvalidOptionError as exc:  # one error type for every refused training option
            raise ModelConfigError(str(exc)) from None
    for name, value in (cfg.arch_kwargs or {}).items():  # --t: a count, like the width
        if isinstance(value, int) and not isinstance(value, bool):
            _positive_int(value, f"--{name.replace('_', '-')}")
    if cfg.resume and cfg.init_from:
        raise ModelConfigError("--resume continues a run and --init-from starts one: give one of them.")
    cls = get_model_class(cfg.arch)  # unknown names fail here, before any data is read
    caps = model_capabilities(cls)
    if caps.volumetric:
        raise ModelConfigError(f"{cfg.arch} is a pixel classifier; train it with --data indian-pines:PATH.")
    h, w = parse_size(cfg.input_size)
    d = caps.input_divisor
    if h % d or w % d:
        hint = " x ".join("/".join(str(v) for v in nearest_valid_sizes(s, d)) for s in (h, w))
        raise ModelConfigError(f"{cfg.arch} needs --input-size divisible by {d}; got {h} {w}. Nearest: {hint}.")
    check_output_dir(cfg.output_dir, force=cfg.force, resume=cfg.resume)
    for flag, path in (("--resume", cfg.resume), ("--init-from", cfg.init_from)):
        if path and not Path(path).is_file():
            raise InputFileError(f"{flag} {path}: the checkpoint does not exist.")


def resume_config(cfg, saved: dict[str, Any], defaults) -> Any:
    """``cfg`` with the run-defining fields of the checkpoint being resumed.

    A field the caller left at its default takes the saved value; one set to something else
    contradicts the run and is refused, naming every conflict (a resumed AttU_Net width 8 must
    not be recorded as a U_Net width 32).
    """
    default = {f.name: (f.default_factory() if callable(f.default_factory) else f.default)  # type: ignore[misc]
               for f in fields(defaults)}
    updates, conflicts = {}, []
    for name in RUN_DEFINING:
        if name not in saved:
            continue
        mine, theirs = _norm(getattr(cfg, name)), _norm(saved[name])
        if mine == theirs:
            continue
        if mine == _norm(default[name]):
            updates[name] = tuple(theirs) if name == "input_size" else theirs
        else:
            flag = "--" + name.replace("_", "-")
            conflicts.append(f"{flag} {_show(mine)} (the checkpoint has {_show(theirs)})")
    if conflicts:
        raise ModelConfigError(
            f"--resume {cfg.resume} continues a run with other settings: {'; '.join(conflicts)}. "
            "Drop these flags to continue that run, or start a new run with -o NEW (optionally --init-from)."
        )
    return replace(cfg, **updates) if updates else cfg


def _norm(v: Any) -> Any:
    if isinstance(v, (tuple, list)):
        return [_norm(x) for x in v]
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items() if x is not None}
    return v


def _show(v: Any) -> str:
    if isinstance(v, list):
        return " ".join(map(str, v))
    return str(v)
