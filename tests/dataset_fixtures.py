"""Tiny benchmark folders for evaluation tests (made on the fly, never copied from a dataset)."""

from pathlib import Path

import numpy as np
from PIL import Image


def write_tiny_davis(root: Path, count: int = 2) -> Path:
    """DAVIS layout (img/NNN.jpg, gt/NNN.png): a dark 25x20 box on a light 50x40 image."""
    (root / "img").mkdir(parents=True)
    (root / "gt").mkdir()
    for i in range(count):
        img = np.full((40, 50, 3), 200, np.uint8)
        img[10:30, 10:35] = 30
        Image.fromarray(img).save(root / "img" / f"{i:03d}.jpg")
        gt = np.zeros((40, 50), np.uint8)
        gt[10:30, 10:35] = 1
        Image.fromarray(gt, mode="L").convert("P").save(root / "gt" / f"{i:03d}.png")
    return root
