"""Drawing a mask and its clicks over an image, for CLIs and reports."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .clicks import Click

ANCHOR_COLOUR = (255, 215, 0)
POSITIVE_COLOUR = (0, 200, 0)
NEGATIVE_COLOUR = (220, 0, 0)


def draw_overlay(rgb: np.ndarray, mask: np.ndarray, clicks: Sequence[Click], colour=(30, 144, 255),
                 opacity: float = 0.5) -> np.ndarray:
    """(H, W, 3) uint8 image with the (H, W) bool mask tinted and clicks marked.

    The first click (anchor) is a larger gold ring; positives green, negatives red.
    """
    out = rgb.astype(np.float32).copy()
    tint = np.array(colour, dtype=np.float32)
    out[mask] = (1 - opacity) * out[mask] + opacity * tint
    out = out.round().astype(np.uint8)
    radius = max(3, round(min(rgb.shape[:2]) / 100))
    for i, c in enumerate(clicks):
        centre = (int(round(c.x)), int(round(c.y)))
        if i == 0:
            cv2.circle(out, centre, radius * 2, ANCHOR_COLOUR, thickness=max(2, radius // 2), lineType=cv2.LINE_AA)
        colour_i = POSITIVE_COLOUR if c.positive else NEGATIVE_COLOUR
        cv2.circle(out, centre, radius, colour_i, thickness=-1, lineType=cv2.LINE_AA)
    return out
