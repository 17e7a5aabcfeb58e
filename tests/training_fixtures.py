"""Synthetic data for trainer tests: images with one bright ellipse each."""

from __future__ import annotations

from functools import partial

import numpy as np

from model.training.sources.base import ObjectSample


def _image(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 80, (72, 96, 3), dtype=np.uint8)
    img[_mask(seed)] = 220
    return img


def _mask(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1000)
    cy, cx = rng.integers(25, 47), rng.integers(30, 66)
    yy, xx = np.mgrid[:72, :96]
    return ((yy - cy) / 16.0) ** 2 + ((xx - cx) / 22.0) ** 2 <= 1


class EllipseSource:
    name = "ellipses"

    def __init__(self, count: int = 6):
        self.count = count

    def __len__(self) -> int:
        return self.count

    def image_id(self, i: int) -> str:
        return f"e{i}"

    def __getitem__(self, i: int) -> ObjectSample:
        return ObjectSample(self.name, f"e{i}", partial(_image, i), partial(_mask, i))
