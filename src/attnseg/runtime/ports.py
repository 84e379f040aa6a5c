"""A model input or output as the codec reads it: a shape and an element type, nothing else.

The codec is built from these rather than from OpenVINO ports, so a client that only knows a
server's v2 metadata (``RemoteSegmenter`` on an OVMS model) builds the same codec as the local
``Segmenter``. numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Port:
    """``shape``: one entry per axis, ``None`` where the axis is dynamic (``shape`` itself is
    ``None`` when even the rank is dynamic); ``dtype``: the element type."""

    shape: tuple[int | None, ...] | None
    dtype: np.dtype

    @classmethod
    def of(cls, port: Any) -> Port:
        """An ``openvino`` input or output port (anything with ``get_partial_shape`` and
        ``get_element_type``)."""
        ps = port.get_partial_shape()
        shape = None if ps.rank.is_dynamic else tuple(d.get_length() if d.is_static else None for d in ps)
        return cls(shape, np.dtype(port.get_element_type().to_dtype()))

    @classmethod
    def from_dims(cls, dims: Sequence[int], dtype: Any) -> Port:
        """Dimensions as v2 metadata gives them (-1 = dynamic) and a numpy-compatible dtype."""
        return cls(tuple(int(d) if int(d) >= 0 else None for d in dims), np.dtype(dtype))

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    def describe(self) -> str:
        dims = "?" if self.shape is None else ",".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.dtype.name}[{dims}]"


__all__ = ["Port"]
