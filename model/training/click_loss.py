"""The click loss (paper section 3.4) and plain BCE for ablation.

w(d) = alpha + (beta - alpha) * (1 - min(d, tau) / tau), tau 100, alpha 0.8, beta 2.0:
pixels near a click weigh up to 2.0, far ones 0.8.
- General click loss on the main output: BCE * w(d), d the distance to the nearest positive
  click on ground-truth foreground and to the nearest negative click on background.
- First click loss on the auxiliary head: BCE * w(distance to the first click) on
  foreground, 0.8 on background. Total = general + first.
Tensors are (B, 1, H, W); distances in pixels of the crop.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from ..clicks import Click, pixel_of

TAU, ALPHA, BETA = 100.0, 0.8, 2.0
#: Distance used when there is no click of a kind: far beyond tau, so the weight is alpha.
NO_CLICK_DISTANCE = 1.0e4


def click_weight(d: torch.Tensor, tau: float = TAU, alpha: float = ALPHA, beta: float = BETA) -> torch.Tensor:
    return alpha + (beta - alpha) * (1.0 - torch.clamp(d, max=tau) / tau)


def _distance(points: list[tuple[int, int]], height: int, width: int) -> np.ndarray:
    if not points:
        return np.full((height, width), NO_CLICK_DISTANCE, dtype=np.float32)
    seeds = np.ones((height, width), dtype=bool)
    for r, c in points:
        seeds[r, c] = False
    return ndimage.distance_transform_edt(seeds).astype(np.float32)


def click_distance_maps(clicks: Sequence[Click], height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pos_dist, neg_dist, first_dist), each (H, W) float32 pixel distances to the nearest
    click of that kind (NO_CLICK_DISTANCE when there is none)."""
    pos = [pixel_of(c, width, height) for c in clicks if c.positive]
    neg = [pixel_of(c, width, height) for c in clicks if not c.positive]
    first = [pixel_of(c, width, height) for c in clicks[:1]]
    return _distance(pos, height, width), _distance(neg, height, width), _distance(first, height, width)


class ClickLoss(nn.Module):
    """mode "click" (the paper's) or "bce" (unweighted, for ablation).

    first_weight: the first-click head's share of the total (the paper adds the two losses: 1.0).
    Larger values push the first-click branch, whose attention the main head follows, harder.
    """

    def __init__(self, mode: str = "click", first_weight: float = 1.0):
        super().__init__()
        if mode not in ("click", "bce"):
            raise ValueError(f"loss mode is 'click' or 'bce', got {mode!r}")
        if not first_weight >= 0:
            raise ValueError(f"first_weight must be 0 or more, got {first_weight}")
        self.mode = mode
        self.first_weight = float(first_weight)

    def forward(self, logits, first_logits, gt, pos_dist, neg_dist, first_dist) -> dict[str, torch.Tensor]:
        bce = F.binary_cross_entropy_with_logits(logits, gt, reduction="none")
        if self.mode == "click":
            w = torch.where(gt > 0.5, click_weight(pos_dist), click_weight(neg_dist))
            general = (bce * w).mean()
        else:
            general = bce.mean()
        result = {"general": general}
        total = general
        if first_logits is not None:
            bce1 = F.binary_cross_entropy_with_logits(first_logits, gt, reduction="none")
            if self.mode == "click":
                w1 = torch.where(gt > 0.5, click_weight(first_dist), torch.full_like(first_dist, ALPHA))
                first = (bce1 * w1).mean()
            else:
                first = bce1.mean()
            result["first"] = first
            total = total + self.first_weight * first
        result["total"] = total
        return result
