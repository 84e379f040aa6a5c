"""The naming rule of output files, applied before anything is written (local and cluster alike).

An image's outputs are named by its stem (``outputs.output_stem``): ``x.jpg`` writes
``masks/x.png``. Two inputs with one stem (``x.jpg`` and ``x.png``, or ``a/x.jpg`` and
``b/x.jpg`` in a list) would write the same files, one silently replacing the other; such an
input is refused up front, naming both files.
"""

from __future__ import annotations

from collections.abc import Iterable

from attnseg.errors import InputFileError
from attnseg.runtime.outputs import output_stem


def check_output_names(inputs: Iterable[tuple[str, str]]) -> None:
    """Refuse ``(name, where)`` inputs whose outputs would collide; ``where`` names the file in the message."""
    seen: dict[str, str] = {}
    for name, where in inputs:
        stem = output_stem(name)
        if stem in seen:
            raise InputFileError(
                f"{seen[stem]} and {where} would both write masks/{stem}.png (outputs are named by the "
                "image's stem); rename one or segment them in separate runs."
            )
        seen[stem] = where


__all__ = ["check_output_names"]
