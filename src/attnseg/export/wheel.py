"""A core-only wheel of the installed attnseg, shipped inside ``package.zip``.

attnseg is not on a package index, so the package README's install line must name a file the
zip carries: ``pip install --no-deps ./attnseg-<version>-py3-none-any.whl``. The wheel holds the
Python modules of this very installation (what the IRs were validated with), not the shipped
model or its samples, and declares only the core dependencies (openvino, numpy, OpenCV).
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from pathlib import Path

from attnseg import __version__

#: Package files the edge box does not need (the shipped checkpoint and its sample images).
_SKIP_DIRS = ("zoo",)


def wheel_name() -> str:
    return f"attnseg-{__version__}-py3-none-any.whl"


def core_wheel(requirements: list[str]) -> bytes:
    """The wheel's bytes: every ``.py`` of the installed ``attnseg`` plus its dist-info."""
    import attnseg

    root = Path(attnseg.__file__).resolve().parent
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if "__pycache__" in rel.parts or (rel.parts[0] in _SKIP_DIRS and len(rel.parts) > 1 and rel.name != "__init__.py"):
            continue
        files[f"attnseg/{rel.as_posix()}"] = path.read_bytes()
    info = f"attnseg-{__version__}.dist-info"
    files[f"{info}/METADATA"] = "\n".join(
        ["Metadata-Version: 2.1", "Name: attnseg", f"Version: {__version__}", "Requires-Python: >=3.10",
         *(f"Requires-Dist: {r}" for r in requirements),
         "Summary: attnseg runtime (core only), packaged with an exported model", ""]).encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: attnseg\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = [f"{name},sha256={_digest(data)},{len(data)}" for name, data in files.items()]
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
