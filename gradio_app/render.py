"""The picture the app shows: mask overlay plus click markers, at the original size."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from model import Click
from model.overlay import draw_overlay

MASK_COLOUR = (30, 144, 255)


def render(rgb: np.ndarray, mask: np.ndarray, clicks: Sequence[Click], opacity: float = 0.5) -> np.ndarray:
    """(H, W, 3) uint8: the anchor as a gold ring around its dot, positives green, negatives red."""
    return draw_overlay(rgb, mask, clicks, colour=MASK_COLOUR, opacity=float(np.clip(opacity, 0.0, 1.0)))
