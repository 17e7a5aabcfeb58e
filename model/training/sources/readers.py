"""Small shared readers for image and mask files, and lazy loaders built on them.

The file formats themselves (label maps, SBD .mat, VOC instance PNGs, id lists) are read by
`model.annotation_files`, which the evaluation loaders use too."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from ...annotation_files import read_label_map
from ...image_io import load_image


def read_rgb(path: str | Path) -> np.ndarray:
    return load_image(path)


def _mask_equal(path: str, value: int) -> np.ndarray:
    return read_label_map(path) == value


def _mask_positive(path: str) -> np.ndarray:
    return read_label_map(path) > 127


def _mask_nonzero(path: str) -> np.ndarray:
    return read_label_map(path) > 0


def mask_loader_nonzero(path):
    return partial(_mask_nonzero, str(path))


def mask_loader_equal(path, value: int):
    return partial(_mask_equal, str(path), int(value))


def mask_loader_binary(path):
    return partial(_mask_positive, str(path))


def image_loader(path):
    return partial(read_rgb, str(path))
