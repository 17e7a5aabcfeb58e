"""The paper's learning-rate schedule: poly decay, then a constant tail."""

from __future__ import annotations


def poly_lr_factor(step: int, total_steps: int, power: float = 0.9, constant_tail_fraction: float = 0.1) -> float:
    """Multiplier of the base lr at `step` (0-based).

    Poly decay (1 - t / T)^power over the first (1 - tail) of the run, then the last value
    held constant, as the paper's 30 poly epochs followed by 3 constant ones.
    """
    if total_steps <= 0:
        return 1.0
    decay_steps = max(1, int(round(total_steps * (1.0 - constant_tail_fraction))))
    t = min(step, decay_steps - 1)
    return (1.0 - t / decay_steps) ** power
