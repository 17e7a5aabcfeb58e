"""Small shared readers for image and mask files."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from ...image_io import load_image


def read_rgb(path: str | Path) -> np.ndarray:
    return load_image(path)


def read_label_map(path: str | Path) -> np.ndarray:
    """A mask or palette PNG as its raw (H, W) integer values (palette indices kept)."""
    with Image.open(path) as img:
        arr = np.asarray(img)
    return arr if arr.ndim == 2 else arr[..., 0]


def _mask_equal(path: str, value: int) -> np.ndarray:
    return read_label_map(path) == value


def _mask_positive(path: str) -> np.ndarray:
    return read_label_map(path) > 127


def mask_loader_equal(path, value: int):
    return partial(_mask_equal, str(path), int(value))


def mask_loader_binary(path):
    return partial(_mask_positive, str(path))


def image_loader(path):
    return partial(read_rgb, str(path))
