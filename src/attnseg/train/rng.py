"""Every random state a training run consumes, saved in ``last.pt`` and restored on resume,
so that a run killed after epoch k and resumed ends bit for bit where an uninterrupted run ends.

What draws random numbers in a run: torch's global generator (initialisation, dropout), numpy's
and Python's global generators (libraries), the DataLoader's own generator (the shuffle order
and the base seed of its worker processes) and the augmentation (a numpy generator derived from
(seed, epoch, index) by the dataset itself). The DataLoader generator is re-seeded from
(seed, epoch) at the start of every epoch, so the shuffle order and the workers' seeds of epoch
k do not depend on how many epochs this process has already run.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def epoch_seed(seed: int, epoch: int) -> int:
    """The DataLoader generator's seed for ``epoch``: a function of (seed, epoch) only."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch)]).generate_state(1)[0])


def capture() -> dict[str, Any]:
    """The global random states (torch, numpy, python) as checkpoint-safe tensors and lists."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": _python_state(random.getstate()),
    }


def restore(state: dict[str, Any] | None) -> bool:
    """Put back what ``capture`` saved; False if ``state`` is missing (an older checkpoint)."""
    if not state:
        return False
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(v) for v in internal), gauss))
    return True


def _python_state(state: tuple) -> list:
    version, internal, gauss = state
    return [int(version), [int(v) for v in internal], gauss]
