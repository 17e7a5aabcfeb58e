"""From an original image and clicks to network inputs, and back.

Shared by the predictor, the trainer and fine-tuning so that every path feeds the network
the same way: resize so the short side is `short_side` (bilinear), scale clicks with it
(pixel centres stay pixel centres), normalise RGB as the checkpoint says, build the three
Gaussian click maps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
import torch

from .click_maps import click_maps
from .clicks import Click


def normalise(image: torch.Tensor, mode: str) -> torch.Tensor:
    """(B, 3, H, W) uint8 or float in [0, 255] -> float32 as the backbone expects.

    "unit": x / 255 (the authors' code); "efficientnet": (x - 127) / 128.
    """
    x = image.float()
    if mode == "unit":
        return x / 255.0
    if mode == "efficientnet":
        return (x - 127.0) / 128.0
    raise ValueError(f"unknown normalisation {mode!r}")


@dataclass(frozen=True)
class WorkingFrame:
    """The geometry of one resize: original (height, width) -> working (height, width)."""

    height: int
    width: int
    work_height: int
    work_width: int

    @staticmethod
    def for_short_side(height: int, width: int, short_side: int) -> "WorkingFrame":
        scale = short_side / min(height, width)
        return WorkingFrame(height, width, max(1, round(height * scale)), max(1, round(width * scale)))

    def to_work(self, click: Click) -> Click:
        sx, sy = self.work_width / self.width, self.work_height / self.height
        return Click((click.x + 0.5) * sx - 0.5, (click.y + 0.5) * sy - 0.5, click.positive)

    def resize_image(self, image: np.ndarray) -> np.ndarray:
        if (self.work_height, self.work_width) == image.shape[:2]:
            return image
        interp = cv2.INTER_AREA if self.work_height < self.height else cv2.INTER_LINEAR
        return cv2.resize(image, (self.work_width, self.work_height), interpolation=interp)

    def probability_to_original(self, prob: np.ndarray) -> np.ndarray:
        if prob.shape == (self.height, self.width):
            return prob
        return cv2.resize(prob, (self.width, self.height), interpolation=cv2.INTER_LINEAR)


#: Every network here (EfficientNet-Lite0 and the paper's ResNet/Res2Net) ends at output stride 16.
OUTPUT_STRIDE = 16


def grid_padding(height: int, width: int, stride: int = OUTPUT_STRIDE) -> tuple[int, int]:
    """(pad_bottom, pad_right) that make each side stride * k + 1 pixels.

    The head upsamples with align_corners=True, which puts the first and last feature cells on
    the first and last pixels; only at stride * k + 1 (DeepLab's 513) do the cells then land
    on the pixels they were computed from. At other sizes the coarse features drift by up to
    a cell toward the bottom-right edge, which shows as masks that leak there.
    """
    return aligned_size(height, stride) - height, aligned_size(width, stride) - width


def aligned_size(size: int, stride: int = OUTPUT_STRIDE) -> int:
    """The smallest stride * k + 1 that is at least size (384 -> 385)."""
    return size + (1 - size) % stride


def click_map_tensors(clicks: Sequence[Click], height: int, width: int) -> torch.Tensor:
    """(3, H, W) float32 tensor: positive, negative, first-click maps at this resolution."""
    return torch.from_numpy(click_maps(clicks, height, width))
