"""Click simulation for training, as in the paper.

1-10 positive and 0-10 negative clicks. Positives lie inside the object at least P1 pixels
from its boundary and P2 from each other; negatives lie in the background between N1 and
N2 pixels from the object and at least N3 from each other. P1, P2, N1, N3 are drawn per
call from the paper's sets. The first click is the object's most central point (largest
distance to the boundary, the paper's E(p) = 1). Arrays are (H, W); clicks are (x=col, y=row).

Not in the paper, off by default: `first_click_only_probability` gives that share of samples the
first click alone. Under the paper's draw a sample has only its first click once in 110 (one
positive of 1-10, no negative of 0-10), so the network rarely practises the product's and the
benchmark's first step: one click, the whole object. Iterative training then adds the robot's
corrections to such a sample, which is the benchmark's click sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..clicks import Click
from ..robot_user import first_click


@dataclass(frozen=True)
class ClickSimulationConfig:
    p1_choices: tuple[int, ...] = (5, 10, 15, 20)
    p2_choices: tuple[int, ...] = (7, 10, 20)
    n1_choices: tuple[int, ...] = (15, 40, 60)
    n2: int = 80
    n3_choices: tuple[int, ...] = (10, 15, 25)
    min_positive: int = 1
    max_positive: int = 10
    min_negative: int = 0
    max_negative: int = 10
    first_click_only_probability: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.first_click_only_probability <= 1.0:
            raise ValueError("first_click_only_probability must lie in [0, 1], "
                             f"got {self.first_click_only_probability}")


def _pick_spaced(candidates: np.ndarray, count: int, min_gap: float, taken: list[tuple[int, int]],
                 rng: np.random.Generator) -> list[tuple[int, int]]:
    """Up to `count` (row, col) points from candidates (N, 2), each >= min_gap from the others
    and from `taken`. Random order; stops when no candidate is left."""
    chosen: list[tuple[int, int]] = []
    if count <= 0 or len(candidates) == 0:
        return chosen
    pool = candidates[rng.permutation(len(candidates))[: 4000]]
    others = np.array(taken, dtype=np.float64).reshape(-1, 2)
    for r, c in pool:
        if len(chosen) >= count:
            break
        if len(others) and np.min((others[:, 0] - r) ** 2 + (others[:, 1] - c) ** 2) < min_gap**2:
            continue
        chosen.append((int(r), int(c)))
        others = np.vstack([others, [[r, c]]])
    return chosen


def simulate_clicks(gt: np.ndarray, rng: np.random.Generator,
                    config: ClickSimulationConfig = ClickSimulationConfig(),
                    anchor: Click | None = None) -> list[Click]:
    """Ordered clicks for one object: the central first click, other positives, negatives.

    anchor: the first click when the caller knows it (the whole object's central point, before
    cropping); None takes the central point of `gt`.
    """
    gt = np.asarray(gt, dtype=bool)
    if not gt.any():
        raise ValueError("cannot simulate clicks on an empty mask")
    if anchor is None:
        anchor = first_click(gt)
    # Drawn only when switched on, so that the paper's draws stay what they were.
    if config.first_click_only_probability > 0 and rng.random() < config.first_click_only_probability:
        return [anchor]
    p1 = int(rng.choice(config.p1_choices))
    p2 = int(rng.choice(config.p2_choices))
    n1 = int(rng.choice(config.n1_choices))
    n3 = int(rng.choice(config.n3_choices))
    n_pos = int(rng.integers(config.min_positive, config.max_positive + 1)) - 1
    n_neg = int(rng.integers(config.min_negative, config.max_negative + 1))

    inside = ndimage.distance_transform_edt(np.pad(gt, 1))[1:-1, 1:-1]
    outside = ndimage.distance_transform_edt(~gt)
    taken = [(int(anchor.y), int(anchor.x))]
    pos = _pick_spaced(np.argwhere(inside >= p1), n_pos, p2, taken, rng)
    neg = _pick_spaced(np.argwhere((outside >= n1) & (outside <= config.n2)), n_neg, n3, [], rng)
    return [anchor] + [Click(float(c), float(r), True) for r, c in pos] + \
        [Click(float(c), float(r), False) for r, c in neg]
