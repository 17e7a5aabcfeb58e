"""Click maps and loss distances computed with torch on the training device.

The same numbers as `batch.maps_for` and `batch.distances_for` (scipy distance transforms on
the CPU), from the click coordinates alone: the Euclidean distance to the nearest click is
the minimum over clicks of the distance to each, and the Gaussian of the nearest click is
the Gaussian of that minimum. On a GPU this takes a few milliseconds for a whole batch,
where the CPU path costs tens of milliseconds per crop in the training process, which a
large batch would wait for at every step.

Clicks are (x=col, y=row) in pixels of the (H, W) crop, rounded and clamped as `pixel_of`.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from ..click_maps import DISTANCE_CAP, FIRST_CLICK_FWHM, POINT_FWHM
from ..clicks import Click, pixel_of
from .click_loss import NO_CLICK_DISTANCE


def _min_squared_distance(points: Sequence[tuple[int, int]], rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor | None:
    """(H, W) float32 squared distance to the nearest (row, col) point; None for no point."""
    best = None
    for r, c in points:
        d2 = (rows - r) ** 2 + (cols - c) ** 2
        best = d2 if best is None else torch.minimum(best, d2)
    return best


def maps_and_distances(click_lists: Sequence[Sequence[Click]], height: int, width: int,
                       device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """((B, 3, H, W) Gaussian maps, (B, 3, H, W) distances), float32 on `device`.

    Channels: positive, negative, first click. Maps as `model.click_maps.click_maps`
    (distance capped at 255, FWHM 10, 10, 30); distances as `click_loss.click_distance_maps`
    (NO_CLICK_DISTANCE where a kind has no click).
    """
    rows = torch.arange(height, device=device, dtype=torch.float32)[:, None]
    cols = torch.arange(width, device=device, dtype=torch.float32)[None, :]
    b = len(click_lists)
    maps = torch.zeros((b, 3, height, width), device=device, dtype=torch.float32)
    dists = torch.full((b, 3, height, width), NO_CLICK_DISTANCE, device=device, dtype=torch.float32)
    k_point = -4.0 * math.log(2.0) / POINT_FWHM**2
    k_first = -4.0 * math.log(2.0) / FIRST_CLICK_FWHM**2
    for i, clicks in enumerate(click_lists):
        kinds = (
            [pixel_of(c, width, height) for c in clicks if c.positive],
            [pixel_of(c, width, height) for c in clicks if not c.positive],
            [pixel_of(c, width, height) for c in list(clicks)[:1]],
        )
        for channel, (points, k) in enumerate(zip(kinds, (k_point, k_point, k_first))):
            d2 = _min_squared_distance(points, rows, cols)
            if d2 is None:
                continue  # map 0 (exp of the capped distance underflows), distance NO_CLICK_DISTANCE
            dists[i, channel] = torch.sqrt(d2)
            maps[i, channel] = torch.exp(k * torch.clamp(d2, max=DISTANCE_CAP**2))
    return maps, dists
