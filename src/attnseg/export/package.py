"""``seg-export ... --package``: one zip an edge box can take as it is.

Inside, under one folder: the IRs of the export (``model.xml``/``.bin``, and ``model_int8.xml``
when the folder has it) with their ``.json`` descriptions, a core-only wheel of this attnseg
(``export.wheel``: attnseg is on no package index, so the install line names the file), a
``README.md`` with the exact core-only install command and a snippet, ``demo.py`` (image,
folder, video, camera) and ``SHA256SUMS`` over every other file (``sha256sum -c SHA256SUMS``).

The demo runs on ``attnseg.runtime`` rather than on hand-written pre/post-processing: the core
install (``pip install attnseg``) pulls only openvino, numpy and opencv-python-headless, and the
runtime is the code the IRs were validated with (letterbox, dynamic shapes, every output kind,
older IRs), so the box runs what was tested instead of a second copy of it.
"""

from __future__ import annotations

import hashlib
import zipfile
from importlib import resources
from pathlib import Path

from attnseg import __version__
from attnseg.atomic import atomic_file
from attnseg.errors import InputFileError
from attnseg.export.wheel import core_wheel, wheel_name
from attnseg.metadata import ModelMetadata, metadata_json_path

PACKAGE_NAME = "package.zip"
#: The core dependencies, pinned to what the package was built and tested with.
CORE = ("openvino", "numpy", "opencv-python-headless")


def core_requirements() -> list[str]:
    """``name==version`` of the core dependencies as installed here (what the IRs were tested with)."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in CORE:
        try:
            out.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            out.append(name)
    return out


def install_command() -> str:
    """The exact install line the package README gives, run in the package folder (core only: no
    torch, onnx or nncf; attnseg from the wheel the package carries)."""
    return f'pip install {" ".join(core_requirements())} && pip install --no-deps ./{wheel_name()}'


def write_package(export_dir: str | Path, zip_path: str | Path | None = None, *, folder: str | None = None) -> Path:
    """Zip the IRs of ``export_dir`` with a README, ``demo.py`` and ``SHA256SUMS``.

    ``zip_path`` defaults to ``<export_dir>/package.zip``; written under a temporary name and
    renamed, so a failure leaves no half-written zip.
    """
    export_dir = Path(export_dir)
    xmls = sorted(p for p in export_dir.glob("*.xml") if p.with_suffix(".bin").is_file())
    if not xmls:
        raise InputFileError(f"{export_dir} has no OpenVINO IR (.xml with its .bin) to package.")
    main = export_dir / "model.xml" if (export_dir / "model.xml") in xmls else xmls[0]
    meta = ModelMetadata.read_json(metadata_json_path(main))
    folder = folder or f"attnseg-{(meta.arch or 'model').lower()}"
    files: dict[str, bytes] = {}
    for xml in xmls:
        for path in (xml, xml.with_suffix(".bin"), metadata_json_path(xml)):
            if path.is_file():
                files[path.name] = path.read_bytes()
    files["demo.py"] = resources.files("attnseg.export").joinpath("package_demo.py").read_bytes()
    files[wheel_name()] = core_wheel(core_requirements())
    files["README.md"] = readme(meta, [x.name for x in xmls], main.name, folder).encode("utf-8")
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items()))
    files["SHA256SUMS"] = sums.encode("utf-8")
    zip_path = Path(zip_path) if zip_path is not None else export_dir / PACKAGE_NAME
    with atomic_file(zip_path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in sorted(files.items()):
            z.writestr(f"{folder}/{name}", data)
    return zip_path


def readme(meta: ModelMetadata, irs: list[str], main: str, folder: str) -> str:
    size = "x".join(map(str, meta.input_size)) if meta.input_size else "any (multiples of 16)"
    names = ", ".join(meta.classes)
    model_api = meta.model_api or {}
    api_line = ("It also loads in OpenVINO Model API with no configuration: "
                f"`SegmentationModel.create_model(\"{main}\")`." if model_api.get("compatible")
                else f"Not readable by OpenVINO Model API: {model_api.get('reason', 'exported before attnseg wrote model_info')}.")
    return f"""# {meta.arch} ({meta.task}: {names}), exported by attnseg {meta.toolkit_version or __version__}

Files: {", ".join(irs)} (OpenVINO IR; each `.json` is the description the `.xml` also carries),
`demo.py`, `SHA256SUMS` (check with `sha256sum -c SHA256SUMS`). Input: BGR images of any size
(resized to {size} by the runtime, policy `{meta.resize_policy}`); {meta.precision} weights in `{main}`.

## Install (core only: no torch, no ONNX, no NNCF)

```bash
cd {folder}
python3 -m venv .venv && . .venv/bin/activate
{install_command()}
```

`{wheel_name()}` is the attnseg core these files were validated with (its runtime modules, no
model zoo); its only dependencies are the three pinned above.

## Run

```bash
python demo.py polyp.jpg              # -> out/polyp_mask.png, out/polyp_overlay.jpg, out/summary.json
python demo.py images/ -o results/    # a folder
python demo.py clip.mp4               # a video -> out/clip_overlay.mp4
python demo.py 0 --frames 100         # camera 0
```

```python
from attnseg.runtime import Segmenter
seg = Segmenter("{main}", device="CPU")       # GPU, NPU, AUTO
mask = seg.predict("polyp.jpg").mask           # HxW class ids at the image's size
```

{api_line}
"""
