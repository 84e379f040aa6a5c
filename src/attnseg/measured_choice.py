"""Pick the fastest of a few options from interleaved timing rounds (stdlib only).

Shared by the runtime's precision probe and training's ``--precision auto``. The rule is
deterministic given the timings, so it is tested with made-up numbers: the baseline (the
safe choice, e.g. f32) is kept unless another option is faster by more than ``margin`` in
the median *and* faster in most rounds (paired: round i of one option against round i of
the baseline). Rounds are interleaved (A B, B A, ...), so a load spike on a shared machine
lands on one round of each option instead of on one option; an option that wins the median
through one lucky round but loses most rounds is within the noise.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass
class Decision:
    """The chosen option, why, and the numbers behind it (milliseconds, lower is better)."""

    choice: str
    reason: str
    medians_ms: dict[str, float] = field(default_factory=dict)
    rounds_ms: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"choice": self.choice, "reason": self.reason, "medians_ms": self.medians_ms,
                "rounds_ms": self.rounds_ms}


def pick_fastest(rounds_ms: Mapping[str, Sequence[float]], baseline: str, margin: float = 0.10) -> Decision:
    """The baseline, or the fastest option that beats it by ``margin`` (0.10 = 10%) in the
    median and is faster in more than half of the rounds (``rounds_ms[option][i]`` = round i)."""
    if baseline not in rounds_ms:
        raise ValueError(f"baseline {baseline!r} was not measured")
    n = len(rounds_ms[baseline])
    if n == 0 or any(len(v) != n for v in rounds_ms.values()):
        raise ValueError("every option needs the same number (>= 1) of rounds")
    medians = {k: round(statistics.median(v), 3) for k, v in rounds_ms.items()}
    rounds = {k: [round(float(x), 3) for x in v] for k, v in rounds_ms.items()}
    base = medians[baseline]
    winners = []
    for name, times in rounds_ms.items():
        if name == baseline:
            continue
        speedup = base / medians[name] if medians[name] > 0 else 0.0
        won = sum(b > t for b, t in zip(rounds_ms[baseline], times))
        if speedup > 1.0 + margin and 2 * won > n:
            winners.append((medians[name], name, speedup))
    fastest = min((k for k in medians if k != baseline), key=medians.get, default=None)
    shown = [baseline] + ([fastest] if fastest else [])
    listing = ", ".join(f"{k} {medians[k]:.2f} ms" for k in shown)
    if winners:
        _, name, speedup = min(winners)
        shown = ", ".join(f"{k} {medians[k]:.2f} ms" for k in (baseline, name))
        return Decision(name, f"{name} is {speedup:.2f}x faster than {baseline} ({shown}; median of {n} "
                              f"interleaved rounds)", medians, rounds)
    return Decision(baseline, f"{baseline}: nothing is more than {100 * margin:.0f}% faster in most rounds "
                              f"({listing}; median of {n} interleaved rounds)", medians, rounds)
