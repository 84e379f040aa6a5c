"""OpenVINO device names: validate what the user asked for against what this machine has.

Torch-free (openvino is imported inside the functions), so export, optimize, benchmarks and
the runtime share one definition and one error message.

Accepted: a physical device (``CPU``, ``GPU``, ``GPU.1``, ``NPU``) present in
``Core().available_devices``, or a virtual one: ``AUTO`` / ``AUTO:GPU,CPU`` / ``AUTO:-CPU``,
``HETERO:GPU,CPU``, ``MULTI:GPU,CPU``, ``BATCH:GPU(4)`` whose listed devices are present.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from attnseg.errors import DeviceError

VIRTUAL_DEVICES = ("AUTO", "HETERO", "MULTI", "BATCH")
#: Virtual devices that need an explicit device list after the colon.
_NEEDS_LIST = ("HETERO", "MULTI", "BATCH")
_PRIORITY = re.compile(r"\(\s*\d+\s*\)$")  # "GPU(4)" in BATCH / MULTI lists


def available_devices(core: Any | None = None) -> list[str]:
    """The physical devices OpenVINO sees on this machine, e.g. ``['CPU', 'GPU.0', 'GPU.1']``."""
    if core is None:
        import openvino as ov

        core = ov.Core()
    return list(core.available_devices)


def validate_device(device: str, core: Any | None = None) -> str:
    """Return ``device`` normalized (upper case, no spaces) or raise ``DeviceError``.

    The error lists the devices that are available, so the user can pick one.
    """
    if not isinstance(device, str) or not device.strip():
        raise DeviceError(
            f"No device name given ({device!r}). Available devices: {_fmt(available_devices(core))}."
        )
    name = device.strip().replace(" ", "").upper()
    available = available_devices(core)
    head, _, tail = name.partition(":")
    if head in VIRTUAL_DEVICES:
        listed = [d for d in tail.split(",") if d] if tail else []
        if head in _NEEDS_LIST and not listed:
            raise DeviceError(
                f"{head} needs a device list, e.g. {head}:{','.join(_families(available)) or 'CPU'}. "
                f"Available devices: {_fmt(available)}."
            )
        for item in listed:
            target = _PRIORITY.sub("", item.lstrip("-"))
            if not _present(target, available):
                raise DeviceError(_message(target, available, f"(in {device!r}) is not available"))
        if not available:
            raise DeviceError(_message(head, available, "has no device to run on"))
        return name
    if not _present(name, available):
        raise DeviceError(_message(device.strip(), available, "is not available"))
    return name


def _present(name: str, available: Sequence[str]) -> bool:
    """``GPU`` matches ``GPU``/``GPU.0``/``GPU.1``; ``GPU.1`` matches only itself."""
    if name in available:
        return True
    return "." not in name and any(a.split(".")[0] == name for a in available)


def _families(available: Sequence[str]) -> list[str]:
    out: list[str] = []
    for a in available:
        fam = a.split(".")[0]
        if fam not in out:
            out.append(fam)
    return out


def _fmt(available: Sequence[str]) -> str:
    return ", ".join(available) if available else "none"


def _message(name: str, available: Sequence[str], what: str) -> str:
    return (
        f"Device {name} {what} on this machine. Available devices: {_fmt(available)} "
        f"(plus AUTO, HETERO:<list>, MULTI:<list> over them)."
    )
