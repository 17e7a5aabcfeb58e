"""Zoom-in: a second pass of the network on a crop around the object.

Not in the paper (off by default; `Predictor(zoom_in=True)` turns it on). The network works
at a fixed short side (512 px), so a small object gets few working pixels and a coarse
boundary. Zoom-in (as RITM, Sofiiuk et al. 2022, does at evaluation) first predicts on the
whole image, takes the box around that mask and the positive clicks, widens it, and predicts
again on that crop at a higher resolution; the crop's probabilities replace the first
pass's inside the box. The predictor keeps no click history, so both passes happen in one
`predict` call with the whole click sequence.

Boxes are (x0, y0, x1, y1) in pixels of the original image, x1 and y1 exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .clicks import Click, object_box


@dataclass(frozen=True)
class ZoomInConfig:
    """How far to widen the object's box and how much to magnify it.

    skip_clicks: with this many clicks or fewer, one pass only (RITM: 1). The first click's mask
        comes from the whole image, as the network was trained; on GrabCut, zooming in on it
        lowered mIoU@1 from 0.367 to 0.319.
    expansion: the box's width and height are multiplied by this, around its centre (RITM: 1.4).
    min_box: the box is at least this fraction of the image's short side on each axis, so a
        tiny mask still brings some context.
    min_gain: zoom only when the crop's working scale is at least this many times the whole
        image's; below that the second pass would see nearly the same pixels.
    max_gain: the crop is magnified at most this many times over the whole image's working
        scale (a huge upscale shows the network blur it never saw in training).
    """

    skip_clicks: int = 1
    expansion: float = 1.4
    min_box: float = 0.2
    min_gain: float = 1.25
    max_gain: float = 3.0


def focus_box(mask: np.ndarray, clicks: Sequence[Click], config: ZoomInConfig = ZoomInConfig()) -> tuple[int, int, int, int] | None:
    """The crop to predict again, or None when the mask is empty.

    mask: (H, W) bool, the first pass's mask at the original resolution.
    clicks: validated clicks in original pixels; positive ones are always inside the box.
    """
    height, width = mask.shape
    tight = object_box(mask, clicks)
    if tight is None:
        return None
    x0, y0, x1, y1 = tight
    floor = config.min_box * min(height, width)
    box_w = min(width, max(floor, (x1 - x0) * config.expansion))
    box_h = min(height, max(floor, (y1 - y0) * config.expansion))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    # Shift, rather than clip, a box that sticks out, so it keeps its size.
    left = int(round(min(max(cx - box_w / 2, 0), width - box_w)))
    top = int(round(min(max(cy - box_h / 2, 0), height - box_h)))
    return left, top, min(width, left + int(round(box_w))), min(height, top + int(round(box_h)))


def crop_clicks(clicks: Sequence[Click], box: tuple[int, int, int, int]) -> list[Click]:
    """The clicks inside box, in the crop's own pixels (outside ones are dropped)."""
    x0, y0, x1, y1 = box
    return [Click(c.x - x0, c.y - y0, c.positive) for c in clicks
            if x0 - 0.5 <= c.x < x1 - 0.5 and y0 - 0.5 <= c.y < y1 - 0.5]


def crop_short_side(box: tuple[int, int, int, int], image_shape: tuple[int, int], short_side: int,
                    config: ZoomInConfig = ZoomInConfig()) -> int | None:
    """Working short side for the crop, or None when zooming would not magnify enough.

    The crop's scale is the one that gives it the predictor's short side, capped at max_gain
    times the whole image's scale and at the whole image's working pixel count (so the second
    pass never costs more than the first).
    """
    height, width = image_shape
    x0, y0, x1, y1 = box
    crop_h, crop_w = y1 - y0, x1 - x0
    full_scale = short_side / min(height, width)
    scale = min(short_side / min(crop_h, crop_w), config.max_gain * full_scale,
                full_scale * np.sqrt(height * width / (crop_h * crop_w)))
    if scale < config.min_gain * full_scale:
        return None
    return max(16, int(round(scale * min(crop_h, crop_w))))
