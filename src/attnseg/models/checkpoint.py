"""The checkpoint contract (DESIGN.md): one dict, saved with ``torch.save`` and always loaded
with ``torch.load(weights_only=True)`` so nothing in the file can execute.

Keys: ``format``, ``arch``, ``arch_kwargs`` (all constructor arguments, ``t`` included for the R2
models), ``state_dict``, ``classes``, ``input_size``,
``in_channels``, ``normalization`` (mean, std, channel order), ``threshold``, ``metrics``,
``trained_with``, ``resize_policy`` (``stretch`` | ``letterbox``: how training fitted images to
``input_size``; absent in older checkpoints, which mean ``stretch``), ``input_interpolation``
(``area`` | ``linear``: how training resized images, ``attnseg.imaging.resize_image``; absent in
older checkpoints, which were trained with ``area``). The description is
checked on load with the same rules as the exported model's (``attnseg.metadata``); every
problem is listed in one ``MetadataError``. A bare ``state_dict`` from the reference implementation loads when the
architecture is named; its missing constructor arguments are read off the weight shapes.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attnseg import __version__
from attnseg.atomic import atomic_file
from attnseg.errors import CheckpointError, InputFileError, MetadataError
from attnseg.metadata import (
    LEGACY_INTERPOLATION,
    Normalization,
    check_interpolation,
    check_resize_policy,
    checkpoint_problems,
)
from attnseg.models.registry import create_model, get_model_class, list_models, model_capabilities

FORMAT = "attnseg.checkpoint/1"
#: The reference implementation normalises RGB in [0, 1] with mean 0.5, std 0.5.
REFERENCE_NORMALIZATION = Normalization(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


@dataclass
class CheckpointInfo:
    """Everything a checkpoint says about its model besides the weights."""

    arch: str
    arch_kwargs: dict[str, Any]
    classes: list[str]
    input_size: tuple[int, int] | None = None
    in_channels: int = 3
    normalization: Normalization = field(default_factory=Normalization)
    threshold: float = 0.5
    resize_policy: str = "stretch"
    input_interpolation: str = LEGACY_INTERPOLATION  # how training resized images (area | linear)
    metrics: dict[str, Any] = field(default_factory=dict)
    trained_with: dict[str, Any] = field(default_factory=dict)
    source: str = "attnseg"  # "attnseg" or "reference-state-dict"
    sha256: str = ""
    path: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> str:
        if model_capabilities(self.arch).volumetric:
            return "pixel_classification"
        return "binary" if len(self.classes) <= 1 else "multiclass"


def default_classes(num_outputs: int) -> list[str]:
    """One foreground name for a single-logit model, ``class_i`` otherwise."""
    return ["foreground"] if num_outputs == 1 else [f"class_{i}" for i in range(num_outputs)]


def save_checkpoint(path: str | Path, model: nn.Module, **meta: Any) -> Path:
    """Save ``model`` with the full contract; ``meta`` fills the other keys.

    Written to a temporary name and renamed, so an interrupted save leaves the old file.
    """
    arch = getattr(model, "arch", type(model).__name__)
    get_model_class(arch)  # only registered architectures can be rebuilt from a checkpoint
    arch_kwargs = dict(getattr(model, "arch_kwargs", {}))
    num_out = arch_kwargs.get("output_ch", arch_kwargs.get("n_classes", arch_kwargs.get("num_classes", 1)))
    norm = meta.pop("normalization", None) or Normalization()
    if isinstance(norm, Normalization):
        norm = asdict(norm)
    input_size = meta.pop("input_size", None)
    ckpt = {
        "format": FORMAT,
        "arch": arch,
        "arch_kwargs": arch_kwargs,
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "classes": list(meta.pop("classes", None) or default_classes(int(num_out))),
        "input_size": list(input_size) if input_size else None,
        "in_channels": int(getattr(model, "in_channels", 3)),
        "normalization": {k: list(v) if isinstance(v, tuple) else v for k, v in norm.items()},
        "threshold": float(meta.pop("threshold", 0.5)),
        "resize_policy": check_resize_policy(meta.pop("resize_policy", None)),
        "input_interpolation": check_interpolation(meta.pop("input_interpolation", None)),
        "metrics": dict(meta.pop("metrics", None) or {}),
        "trained_with": {"attnseg": __version__, "torch": str(torch.__version__), **(meta.pop("trained_with", None) or {})},
    }
    if meta:
        ckpt["extra"] = meta
    path = Path(path)
    with atomic_file(path) as tmp:
        torch.save(ckpt, tmp)
    return path


def read_checkpoint_file(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint file safely (``weights_only=True``) into a plain dict."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"Checkpoint {path} does not exist.")
    if path.is_dir():
        raise InputFileError(f"Checkpoint {path} is a folder, not a file.")
    if path.stat().st_size == 0:
        raise CheckpointError(f"Checkpoint {path} is empty (0 bytes): an interrupted copy or save? "
                              "Copy or save it again.")
    check_zip_integrity(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc) or "GLOBAL" in str(exc):
            raise CheckpointError(
                f"{path} contains Python objects that would have to be executed to load it; "
                "attnseg refuses to unpickle them. Re-save it as a state_dict "
                "(torch.save(model.state_dict(), ...)) from trusted code."
            ) from None
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint (corrupt or truncated, or a plain pickle that "
            "safe loading refuses)."
        ) from None
    except Exception as exc:  # torch raises many types for damaged files (KeyError, EOFError, ...)
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint (corrupt or truncated): {_first_line(exc)}"
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a checkpoint dict or state_dict.")
    return obj


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0][:160] if lines else "") or type(exc).__name__


def check_zip_integrity(path: Path) -> None:
    """Refuse a zip checkpoint whose stored CRC-32s do not match its bytes.

    ``torch.load`` does not verify the CRCs of the tensor records, so a flipped byte in the
    weights loads silently as a different model. Python's ``zipfile`` checks every member's
    CRC while reading it once (a few ms per MB). Legacy (non-zip) checkpoints have no checksum.
    """
    import zipfile

    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise CheckpointError(f"{path} is a damaged checkpoint archive ({_first_line(exc)}); copy or save it again.") \
            from None
    if bad is not None:
        raise CheckpointError(
            f"{path} is corrupt: the bytes of {bad.split('/', 1)[-1]!r} no longer match their checksum (CRC-32), so the weights "
            "were altered after saving (bad copy, disk error or edit). Copy or save it again."
        )


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


#: Where training frameworks and scripts put the weights inside a checkpoint dict: plain scripts
#: (``state_dict``, ``model_state_dict``, ``model``/``net`` beside ``optimizer``), PyTorch Lightning
#: (``state_dict``, keys prefixed by the LightningModule's attribute name), timm (``state_dict_ema``).
WEIGHT_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "weights", "state_dict_ema")
#: Key prefixes added by wrappers: DataParallel / DDP, torch.compile, Lightning / script attributes.
WRAPPER_PREFIXES = ("module.", "_orig_mod.", "model.", "net.", "network.")
#: ``t`` of the R2 models cannot be read off the weights and changes the outputs.
RECURRENT_ARCHS = ("R2U_Net", "R2AttU_Net")


def load_checkpoint(path: str | Path, arch: str | None = None, **arch_kwargs: Any) -> tuple[nn.Module, CheckpointInfo]:
    """Rebuild the model saved at ``path``; returns ``(model in eval mode, info)``.

    An attnseg checkpoint carries its architecture. Anything else that holds a state_dict loads
    when ``arch`` is named: a bare state_dict, ``{'state_dict': ...}``, ``{'model': ..., 'optimizer':
    ...}``, ``{'model_state_dict': ...}``, PyTorch Lightning checkpoints (``model.`` / ``net.``
    prefixes), DataParallel / torch.compile prefixes, tensors saved on a GPU (mapped to the CPU).
    The constructor arguments not given (width, channels, classes) are read off the weights,
    except ``t`` of the R2 models, which the weights do not pin down: it must be given.
    """
    raw = read_checkpoint_file(path)
    if "state_dict" in raw and "arch" in raw:
        info, state = _info_from_contract(raw, arch, arch_kwargs, where=str(path))
    else:
        found = find_state_dict(raw)
        if found is None:
            keys = ", ".join(sorted(map(str, raw))[:8])
            raise CheckpointError(
                f"{path} is neither an attnseg checkpoint nor a state_dict of tensors, and none of its "
                f"entries ({keys}) is one; pass the state_dict itself (torch.save(model.state_dict(), ...))."
            )
        where, found = found
        state, dropped = strip_wrappers(found, arch)
        if not arch:
            guess = guess_architecture(state)
            hint = f" (the keys look like {guess})" if guess else ""
            raise CheckpointError(
                f"{path} is a bare state_dict; name its architecture with arch= / --arch{hint}. "
                f"Known: {', '.join(list_models())}."
            )
        kwargs = {**infer_arch_kwargs(arch, state), **arch_kwargs}
        _require_t(arch, kwargs, path)
        num_out = kwargs.get("output_ch", kwargs.get("n_classes", kwargs.get("num_classes", 1)))
        info = CheckpointInfo(
            arch=arch,
            arch_kwargs=kwargs,
            classes=default_classes(int(num_out)),
            in_channels=int(kwargs.get("img_ch", kwargs.get("n_channels", kwargs.get("bands", 3)))),
            normalization=REFERENCE_NORMALIZATION,
            source="reference-state-dict",
            extra={"state_dict_key": where, **({"dropped_keys": dropped} if dropped else {})},
        )
    _require_t(info.arch, info.arch_kwargs, path)
    model = create_model(info.arch, **info.arch_kwargs)
    load_state_dict_strict(model, state, info.arch, info.arch_kwargs)
    model.eval()
    info.sha256 = file_sha256(path)
    info.path = str(path)
    return model, info


def require_recorded_arch(path: str | Path, instead: str) -> None:
    """Refuse, before any work, a checkpoint that does not record its architecture, for a command
    that has no ``--arch``; ``instead`` says what to do ({path} and {arch} are filled in)."""
    raw = read_checkpoint_file(path)
    if "state_dict" in raw and "arch" in raw:
        return
    found = find_state_dict(raw)
    guess = guess_architecture(strip_wrappers(found[1])[0]) if found else None
    raise CheckpointError(f"{path} is a bare state_dict: it does not record its architecture. "
                          + instead.format(path=path, arch=guess or "ARCH"))


def _require_t(arch: str, kwargs: dict[str, Any], path: str | Path) -> None:
    """R2U_Net / R2AttU_Net without ``t``: an error that explains the choice, never a silent guess."""
    if arch in RECURRENT_ARCHS and "t" not in kwargs:
        raise CheckpointError(
            f"{path}: {arch} needs t, the number of recurrences in each recurrent block, and the weights do "
            "not record it (the same tensors run with any t, and the outputs differ). The reference "
            "implementation trains with t=3 (main.py's default) while its network.py defaults to t=2, and "
            "its file names do not say which. Pass the t the model was trained with: t=3 (arch_kwargs / "
            "--t 3) for a model from the reference's main.py, t=2 if it was built with network.py's default."
        )


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def find_state_dict(raw: dict[str, Any]) -> tuple[str, dict[str, torch.Tensor]] | None:
    """``(where, state_dict)`` inside a loaded checkpoint dict: the dict itself if it holds only
    tensors, else the first of ``WEIGHT_KEYS`` that is a dict of tensors; None if there is none."""
    if _is_state_dict(raw):
        return "", raw
    for key in WEIGHT_KEYS:
        if _is_state_dict(raw.get(key)):
            return key, raw[key]
    return None


def strip_wrappers(state: dict[str, torch.Tensor], arch: str | None = None) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Drop wrapper prefixes (``WRAPPER_PREFIXES``) until the keys are the network's own.

    A prefix shared by every key goes. A prefix shared by only some keys (a Lightning module that
    also owns a loss with a buffer, e.g. ``criterion.pos_weight``) goes with the other keys when
    the prefixed keys alone are a recognisable network: returns ``(state, dropped key names)``.
    """
    state = dict(state)
    dropped: list[str] = []
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            inside = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            if not inside:
                continue
            if len(inside) == len(state):
                state, changed = inside, True
            elif guess_architecture(inside) is not None and guess_architecture(state) is None:
                dropped += [k for k in state if not k.startswith(prefix)]
                state, changed = inside, True
    return state, dropped


def _info_from_contract(raw: dict, arch: str | None, arch_kwargs: dict,
                        where: str = "checkpoint") -> tuple[CheckpointInfo, dict]:
    if arch and arch != raw["arch"]:
        raise CheckpointError(
            f"The checkpoint holds a {raw['arch']}, not a {arch}; drop --arch or name {raw['arch']}."
        )
    for key in ("resize_policy", "input_interpolation"):
        if key not in raw and key in (raw.get("extra") or {}):
            raw = {**raw, key: raw["extra"][key]}  # older saves put unknown keys there
    kwargs = {**dict(raw.get("arch_kwargs") or {}), **arch_kwargs}
    num_out = kwargs.get("output_ch", kwargs.get("n_classes", kwargs.get("num_classes")))
    problems = checkpoint_problems(raw, num_out if isinstance(num_out, int) else None,
                                   volumetric=model_capabilities(str(raw["arch"])).volumetric)
    if problems:
        raise MetadataError(f"{where}: the checkpoint's description is invalid: {'; '.join(problems)}.")
    norm = raw.get("normalization") or {}
    info = CheckpointInfo(
        arch=raw["arch"],
        arch_kwargs={**dict(raw.get("arch_kwargs") or {}), **arch_kwargs},
        classes=list(raw.get("classes") or ["foreground"]),
        input_size=tuple(raw["input_size"]) if raw.get("input_size") else None,
        in_channels=int(raw.get("in_channels", 3)),
        normalization=Normalization.from_dict(norm) if norm else Normalization(),
        threshold=float(raw.get("threshold", 0.5)),
        resize_policy=check_resize_policy(raw.get("resize_policy")),
        input_interpolation=raw.get("input_interpolation", LEGACY_INTERPOLATION),  # checked above
        metrics=dict(raw.get("metrics") or {}),
        trained_with=dict(raw.get("trained_with") or {}),
        extra=dict(raw.get("extra") or {}),
    )
    return info, strip_wrappers(raw["state_dict"])[0]


def checkpoint_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The network's tensors of any checkpoint ``load_checkpoint`` reads (attnseg contract, bare
    or wrapped state_dict, Lightning ``model.``/``net.`` and DataParallel prefixes), by the same
    rules, for callers that copy weights rather than rebuild the model (``--init-from``)."""
    raw = read_checkpoint_file(path)
    if "state_dict" in raw and "arch" in raw and isinstance(raw["state_dict"], dict):
        found: tuple[str, dict[str, torch.Tensor]] | None = ("state_dict", raw["state_dict"])
    else:
        found = find_state_dict(raw)
    tensors = {k: v for k, v in (found[1] if found else {}).items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{path} holds no state_dict of tensors (neither an attnseg checkpoint nor a "
                              f"state_dict, nor one under {', '.join(WEIGHT_KEYS)}).")
    return strip_wrappers(tensors)[0]


def strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the ``module.`` prefix DataParallel / DistributedDataParallel add."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def guess_architecture(state: dict[str, torch.Tensor]) -> str | None:
    """Which registered architecture a state_dict's key names point to."""
    keys = set(strip_prefix(state))
    has = lambda prefix: any(k.startswith(prefix) for k in keys)  # noqa: E731
    if has("RRCNN1."):
        return "R2AttU_Net" if has("Att5.") else "R2U_Net"
    if has("Conv1.conv."):
        return "AttU_Net" if has("Att5.") else "U_Net"
    if has("inc.double_conv."):
        return "SE_UNet"
    if has("conv1.weight") and has("fc3."):
        return "HybridSN_SE" if has("fc_41.") else "HybridSN"
    return None


#: Where each constructor argument of the reference U-Nets shows in the weights: ``(key, dim,
#: divisor)`` in order of preference, so a state_dict missing some keys still gives its width
#: (and the error names the missing keys, not "wrong shape 8 vs 64" against the default width).
_SHAPE_RULES: dict[tuple[str, ...], dict[str, tuple[tuple[str, int, int], ...]]] = {
    ("U_Net", "AttU_Net"): {
        "img_ch": (("Conv1.conv.0.weight", 1, 1),),
        "base_width": (("Conv1.conv.0.weight", 0, 1), ("Conv1.conv.3.weight", 0, 1), ("Conv2.conv.0.weight", 1, 1),
                       ("Conv2.conv.0.weight", 0, 2), ("Conv3.conv.0.weight", 0, 4), ("Conv4.conv.0.weight", 0, 8),
                       ("Conv5.conv.0.weight", 0, 16), ("Up_conv2.conv.3.weight", 0, 1), ("Conv_1x1.weight", 1, 1)),
        "output_ch": (("Conv_1x1.weight", 0, 1),),
    },
    ("R2U_Net", "R2AttU_Net"): {
        "img_ch": (("RRCNN1.Conv_1x1.weight", 1, 1),),
        "base_width": (("RRCNN1.Conv_1x1.weight", 0, 1), ("RRCNN1.RCNN.0.conv.0.weight", 0, 1),
                       ("RRCNN2.Conv_1x1.weight", 1, 1), ("RRCNN2.Conv_1x1.weight", 0, 2),
                       ("RRCNN3.Conv_1x1.weight", 0, 4), ("Up_RRCNN2.Conv_1x1.weight", 0, 1),
                       ("Conv_1x1.weight", 1, 1)),
        "output_ch": (("Conv_1x1.weight", 0, 1),),
    },
}


def infer_arch_kwargs(arch: str, state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Constructor arguments that the weight shapes pin down (width, channels, classes)."""
    s = state
    for archs, rules in _SHAPE_RULES.items():
        if arch in archs:
            out = {}
            for name, where in rules.items():
                for key, dim, div in where:
                    if key in s and s[key].ndim > dim and int(s[key].shape[dim]) % div == 0:
                        out[name] = int(s[key].shape[dim]) // div
                        break
            return out
    try:
        if arch == "SE_UNet":
            w = s["inc.double_conv.0.weight"]
            bottleneck = s["down4.1.double_conv.0.weight"].shape[0]
            return {
                "n_channels": w.shape[1],
                "base_width": w.shape[0],
                "n_classes": s["outc.weight"].shape[0],
                "factor": 2 if bottleneck == 8 * w.shape[0] else 1,
            }
        if arch in ("HybridSN", "HybridSN_SE"):
            bands = s["conv4.weight"].shape[1] // 32 + 12
            side = int(round((s["fc1.weight"].shape[1] / 64) ** 0.5)) + 8
            return {"bands": bands, "patch_size": side, "num_classes": s["fc3.weight"].shape[0]}
    except KeyError:
        return {}
    return {}


def load_state_dict_strict(model: nn.Module, state: dict[str, torch.Tensor], arch: str, kwargs: dict) -> None:
    """``load_state_dict(strict=True)`` with one short message instead of torch's traceback."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or wrong:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape (file vs model)", wrong)):
            if items:
                more = f" (+{len(items) - 4} more)" if len(items) > 4 else ""
                parts.append(f"{len(items)} {label}: {', '.join(items[:4])}{more}")
        guess = guess_architecture(state)
        fit = infer_arch_kwargs(guess, state) if guess else {}
        if guess and (guess != arch or any(kwargs.get(k) != v for k, v in fit.items())):
            args = ", ".join(f"{k}={v}" for k, v in fit.items())
            hint = f" The weights fit {guess}({args})."
        else:
            hint = ""
        raise CheckpointError(f"The weights do not fit {arch}({_fmt(kwargs)}): " + "; ".join(parts) + "." + hint)
    model.load_state_dict(state, strict=True)


def _fmt(kwargs: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in kwargs.items())
