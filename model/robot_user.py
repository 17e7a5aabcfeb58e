"""The robot user: where a person would click next. One rule for evaluation and for
iterative training.

First click: positive, at the point deepest inside the object. Next click: at the point
deepest inside the larger error region (false negatives vs false positives), measured by
an exact L2 distance transform of the error map padded by one zero pixel (so the image
border counts as a boundary); positive if the false-negative maximum is larger, otherwise
negative (ties go negative). Ignore-labelled pixels are never errors; already clicked
pixels are excluded. Arrays are (H, W) bool; clicks are (x=column, y=row).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
from scipy import ndimage

from .clicks import Click, pixel_of


def _inner_distance(region: np.ndarray) -> np.ndarray:
    """Distance of each region pixel to the nearest non-region pixel, image edge included."""
    padded = np.pad(region, 1, mode="constant", constant_values=False)
    return ndimage.distance_transform_edt(padded)[1:-1, 1:-1]


def _exclude(dist: np.ndarray, clicked: Iterable[Click] | None) -> np.ndarray:
    if clicked:
        h, w = dist.shape
        for c in clicked:
            r, col = pixel_of(c, w, h)
            dist[r, col] = 0.0
    return dist


def _argmax_point(dist: np.ndarray) -> tuple[int, int]:
    """(row, col) of the maximum; the first in row-major order on ties (deterministic)."""
    idx = int(np.argmax(dist))
    return idx // dist.shape[1], idx % dist.shape[1]


def first_click(gt: np.ndarray, ignore: np.ndarray | None = None) -> Click:
    """The positive click deepest inside the object."""
    gt = np.asarray(gt, dtype=bool)
    if ignore is not None:
        gt = gt & ~ignore
    if not gt.any():
        raise ValueError("the ground-truth mask is empty: there is no object to click")
    r, c = _argmax_point(_inner_distance(gt))
    return Click(float(c), float(r), True)


def next_click(
    pred: np.ndarray,
    gt: np.ndarray,
    ignore: np.ndarray | None = None,
    clicked: Iterable[Click] | None = None,
) -> Click | None:
    """The next corrective click, or None when nothing is wrong any more."""
    pred = np.asarray(pred, dtype=bool)
    gt = np.asarray(gt, dtype=bool)
    fn = gt & ~pred
    fp = pred & ~gt
    if ignore is not None:
        fn &= ~ignore
        fp &= ~ignore
    if not fn.any() and not fp.any():
        return None
    clicked = list(clicked or [])
    fn_dist = _exclude(_inner_distance(fn), clicked)
    fp_dist = _exclude(_inner_distance(fp), clicked)
    fn_max, fp_max = float(fn_dist.max()), float(fp_dist.max())
    if fn_max == 0.0 and fp_max == 0.0:
        return None
    positive = fn_max > fp_max
    r, c = _argmax_point(fn_dist if positive else fp_dist)
    return Click(float(c), float(r), positive)


def iou(pred: np.ndarray, gt: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """Intersection over union, leaving ignore-labelled pixels out; 1.0 when both are empty."""
    pred = np.asarray(pred, dtype=bool)
    gt = np.asarray(gt, dtype=bool)
    if ignore is not None:
        keep = ~ignore
        pred, gt = pred & keep, gt & keep
    union = np.count_nonzero(pred | gt)
    return 1.0 if union == 0 else np.count_nonzero(pred & gt) / union
