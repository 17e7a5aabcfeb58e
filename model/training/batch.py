"""Turning a batch of images, masks and clicks into network inputs and loss targets.

Clicks travel through the data loader as a padded (B, K, 3) float tensor of rows
[x, y, positive] (x, y in crop pixels; rows of -1 are padding) so batches have fixed
shapes; here they become Click lists, Gaussian maps and distance maps.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..click_maps import click_maps
from ..clicks import Click


def clicks_from_rows(rows: torch.Tensor, count: int) -> list[Click]:
    """(K, 3) padded rows -> the first `count` clicks."""
    return [Click(float(r[0]), float(r[1]), bool(r[2] > 0.5)) for r in rows[:count].tolist()]


def maps_for(click_lists: Sequence[Sequence[Click]], height: int, width: int) -> torch.Tensor:
    """(B, 3, H, W) float32: positive, negative and first-click Gaussian maps per sample."""
    return torch.from_numpy(np.stack([click_maps(c, height, width) for c in click_lists]))


def distances_for(click_lists: Sequence[Sequence[Click]], height: int, width: int) -> torch.Tensor:
    """(B, 3, H, W) float32 distances to the nearest positive, negative and first click."""
    from .click_loss import click_distance_maps

    return torch.from_numpy(np.stack([np.stack(click_distance_maps(c, height, width)) for c in click_lists]))
