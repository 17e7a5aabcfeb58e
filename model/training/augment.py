"""Augmentation: random scale, a crop that keeps part of the object, flip, colour jitter."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..clicks import Click
from ..robot_user import first_click


@dataclass(frozen=True)
class AugmentConfig:
    """crop_size: output side S. The image is first resized so its short side is
    short_side * scale (short_side defaults to crop_size), scale uniform in scale_range.
    A short_side above crop_size keeps objects at the size they have at inference
    (the predictor works at a 512-pixel short side) while crops stay cheap."""

    crop_size: int = 320
    short_side: int | None = None
    scale_range: tuple[float, float] = (0.75, 1.4)
    flip_probability: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    #: Place the window so that it holds the whole object's most central point (the robot's and the
    #: benchmark's first click, computed before cropping) at a random place, as the fine-tuning crops
    #: do (`model/finetune/data.py` crop_around_anchor); off: centred on a random object pixel.
    anchor_crop: bool = False


def _jitter(image: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    x = image.astype(np.float32)
    x *= 1.0 + rng.uniform(-cfg.brightness, cfg.brightness)
    mean = x.mean()
    x = (x - mean) * (1.0 + rng.uniform(-cfg.contrast, cfg.contrast)) + mean
    gray = x.mean(axis=2, keepdims=True)
    x = (x - gray) * (1.0 + rng.uniform(-cfg.saturation, cfg.saturation)) + gray
    return np.clip(x, 0, 255).astype(np.uint8)


def augment(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
            cfg: AugmentConfig = AugmentConfig()) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 + (H, W) bool -> (S, S, 3) uint8 + (S, S) bool.

    The crop window is centred (with jitter) on a random object pixel, so it always holds
    part of the object; images smaller than the crop are padded (reflect for the image,
    background for the mask). With cfg.anchor_crop it holds the object's first click instead.
    """
    image, mask, _anchor = augment_with_anchor(image, mask, rng, cfg)
    return image, mask


def _window_origin(coord: int, extent: int, size: int, rng: np.random.Generator) -> int:
    """A random window start in [0, extent - size] whose window of `size` holds `coord`."""
    lo, hi = max(0, coord - size + 1), min(extent - size, coord)
    return int(rng.integers(lo, hi + 1)) if hi >= lo else int(np.clip(coord - size // 2, 0, extent - size))


def augment_with_anchor(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
                        cfg: AugmentConfig = AugmentConfig()) -> tuple[np.ndarray, np.ndarray, Click | None]:
    """`augment`, plus the first click of the whole object in crop pixels (x, y) when
    cfg.anchor_crop (None otherwise: the click simulation then takes the cropped object's).
    """
    s = cfg.crop_size
    h, w = mask.shape
    scale = (cfg.short_side or s) * rng.uniform(*cfg.scale_range) / min(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    mask = cv2.resize(mask.astype(np.uint8), (nw, nh), interpolation=cv2.INTER_NEAREST).astype(bool)
    if nh < s or nw < s:
        ph, pw = max(0, s - nh), max(0, s - nw)
        pads = ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2))
        image = np.pad(image, pads + ((0, 0),), mode="reflect" if min(nh, nw) > 1 else "edge")
        mask = np.pad(mask, pads, mode="constant")
        nh, nw = mask.shape
    anchor = None
    if cfg.anchor_crop and mask.any():
        anchor = first_click(mask)
        ar, ac = int(anchor.y), int(anchor.x)
        top, left = _window_origin(ar, nh, s, rng), _window_origin(ac, nw, s, rng)
        anchor = Click(anchor.x - left, anchor.y - top, True)
    else:
        points = np.argwhere(mask)
        if len(points):
            r, c = points[rng.integers(len(points))]
            r += int(rng.integers(-s // 4, s // 4 + 1))
            c += int(rng.integers(-s // 4, s // 4 + 1))
        else:
            r, c = nh // 2, nw // 2
        top = int(np.clip(r - s // 2, 0, nh - s))
        left = int(np.clip(c - s // 2, 0, nw - s))
    image = image[top:top + s, left:left + s]
    mask = mask[top:top + s, left:left + s]
    if rng.random() < cfg.flip_probability:
        image, mask = image[:, ::-1], mask[:, ::-1]
        if anchor is not None:
            anchor = Click(s - 1 - anchor.x, anchor.y, True)
    return np.ascontiguousarray(_jitter(image, rng, cfg)), np.ascontiguousarray(mask), anchor
