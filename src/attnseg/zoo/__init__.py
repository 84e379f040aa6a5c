"""Models and sample images that ship inside the package (no download, ever).

``default_checkpoint()`` is the Kvasir-SEG Attention U-Net the README's main command exports;
``sample_dir()`` holds about 30 images with masks from the Kvasir-SEG *test* split (never used
for training or calibration) for the demo, Dice checks and a quick calibration.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from attnseg.errors import AttnsegError

DEFAULT_MODEL = "kvasir_attunet16.pt"
SAMPLES = "samples/kvasir"


def _root() -> Path:
    return Path(str(resources.files(__name__)))


def default_checkpoint() -> Path:
    """The shipped default model (an attnseg checkpoint, fp16-stored weights)."""
    path = _root() / DEFAULT_MODEL
    if not path.is_file():
        raise AttnsegError(f"The shipped model {path.name} is missing from this install ({path}); reinstall attnseg.")
    return path


def model_card() -> str:
    """The default model's card: data, split, training command, metrics, data licence."""
    return (_root() / "MODEL_CARD.md").read_text(encoding="utf-8")


def sample_dir() -> Path:
    """Folder with ``images/`` and ``masks/`` of the bundled Kvasir-SEG test samples."""
    path = _root() / SAMPLES
    if not (path / "images").is_dir():
        raise AttnsegError(f"The bundled sample images are missing from this install ({path}); reinstall attnseg.")
    return path
