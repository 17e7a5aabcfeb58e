"""Copy-paste: objects cut from training images (by their masks) pasted onto other training images.

Sample i is a pure function of (seed, i): an object of `objects` is cut along its mask, scaled so
its box's long side is `scale_range` times the background's short side (shrunk further when it
would not fit), and pasted at a random place that keeps it whole inside a background image taken
from an object of `backgrounds` (BSDS500 scenes are good ones: their segments are objects too).
The paste's edge is feathered over about a pixel so a hard cut-out border does not give the object
away. The target is
- the pasted object (it lies on top, so its whole mask is visible), or, with probability
  `occluded_target_probability`,
- the background image's own object, minus what the paste covers: the part a user would still see.
  When less than `min_visible` of it stays visible, or fewer than `min_pixels` pixels, the pasted
  object is the target instead.
Coordinates are (row, col) in the background image's pixels; images (H, W, 3) uint8, masks (H, W) bool.

Held-out images never contribute: `exclude` lists (source name, image id) pairs to skip, and the
training run fills it with its held-out split (`model/training/run.py`).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Iterable, Sequence

import cv2
import numpy as np

from .base import ObjectSample


def _flat_index(sources: Sequence, exclude: set[tuple[str, str]]) -> list[tuple[int, int]]:
    index = []
    for s, source in enumerate(sources):
        name = getattr(source, "name", "")
        index.extend((s, i) for i in range(len(source)) if (name, source.image_id(i)) not in exclude)
    return index


def paste(background: np.ndarray, obj_image: np.ndarray, obj_mask: np.ndarray, top: int, left: int,
          height: int, width: int, feather: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """Paste the object's box (cut by its mask, resized to height x width) at (top, left).

    Returns (composite (H, W, 3) uint8, pasted mask (H, W) bool in background pixels).
    The box must lie inside the background.
    """
    rows, cols = np.nonzero(obj_mask)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    patch = cv2.resize(obj_image[r0:r1, c0:c1], (width, height), interpolation=cv2.INTER_LINEAR)
    patch_mask = cv2.resize(obj_mask[r0:r1, c0:c1].astype(np.uint8), (width, height),
                            interpolation=cv2.INTER_NEAREST).astype(bool)
    alpha = patch_mask.astype(np.float32)
    if feather > 0:
        alpha = cv2.GaussianBlur(alpha, (0, 0), feather) * patch_mask  # soft inside, nothing outside
    out = background.copy()
    region = out[top:top + height, left:left + width].astype(np.float32)
    blended = region * (1 - alpha[..., None]) + patch.astype(np.float32) * alpha[..., None]
    out[top:top + height, left:left + width] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    pasted = np.zeros(background.shape[:2], bool)
    pasted[top:top + height, left:left + width] = patch_mask
    return out, pasted


class CopyPasteSource:
    """`objects` and `backgrounds`: data sources (or specs for `build_source`). `count` samples."""

    name = "copy_paste"

    def __init__(self, objects: Sequence[Any], backgrounds: Sequence[Any], count: int = 2000, seed: int = 0,
                 scale_range: tuple[float, float] = (0.25, 0.75), occluded_target_probability: float = 0.3,
                 min_visible: float = 0.3, min_pixels: int = 400, feather: float = 0.8,
                 exclude: Iterable[Sequence[str]] = ()):
        from . import build_source

        if count <= 0:
            raise ValueError(f"copy_paste: count must be positive, got {count}")
        lo, hi = scale_range
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"copy_paste: scale_range must satisfy 0 < low <= high <= 1, got {scale_range}")
        if not 0 <= occluded_target_probability <= 1:
            raise ValueError("copy_paste: occluded_target_probability must lie in [0, 1]")
        self.objects = [build_source(s) if isinstance(s, dict) else s for s in objects]
        self.backgrounds = [build_source(s) if isinstance(s, dict) else s for s in backgrounds]
        skip = {(str(a), str(b)) for a, b in exclude}
        self.object_index = _flat_index(self.objects, skip)
        self.background_index = _flat_index(self.backgrounds, skip)
        if not self.object_index or not self.background_index:
            raise ValueError("copy_paste needs at least one object and one background image")
        self.count, self.seed = int(count), int(seed)
        self.scale_range = (float(lo), float(hi))
        self.occluded_target_probability = float(occluded_target_probability)
        self.min_visible, self.min_pixels, self.feather = float(min_visible), int(min_pixels), float(feather)
        self._cache: tuple[int, tuple[np.ndarray, np.ndarray]] | None = None

    def __len__(self) -> int:
        return self.count

    def image_id(self, i: int) -> str:
        return f"copy_paste{i}"

    def __getitem__(self, i: int) -> ObjectSample:
        if not 0 <= i < self.count:
            raise IndexError(i)
        return ObjectSample(self.name, self.image_id(i), partial(self._part, i, 0), partial(self._part, i, 1))

    def _part(self, i: int, which: int):
        if self._cache is None or self._cache[0] != i:
            self._cache = (i, self.composite(i))
        return self._cache[1][which]

    def composite(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(image (H, W, 3) uint8, target (H, W) bool) of sample i."""
        rng = np.random.default_rng([self.seed, 29, int(i)])
        s, b = self.background_index[int(rng.integers(len(self.background_index)))]
        scene = self.backgrounds[s][b]
        background, scene_mask = scene.load_image(), scene.load_mask()
        if scene_mask.shape != background.shape[:2]:
            scene_mask = cv2.resize(scene_mask.astype(np.uint8), background.shape[1::-1],
                                    interpolation=cv2.INTER_NEAREST).astype(bool)
        for _attempt in range(5):
            s, o = self.object_index[int(rng.integers(len(self.object_index)))]
            obj = self.objects[s][o]
            obj_mask = obj.load_mask()
            if np.count_nonzero(obj_mask) >= self.min_pixels:
                break
        else:  # no usable object drawn: the scene's own object, unoccluded
            return background, scene_mask
        obj_image = obj.load_image()
        rows, cols = np.nonzero(obj_mask)
        box_h, box_w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        bh, bw = background.shape[:2]
        long_side = rng.uniform(*self.scale_range) * min(bh, bw)
        f = min(long_side / max(box_h, box_w), bh / box_h, bw / box_w)
        height, width = max(1, int(box_h * f)), max(1, int(box_w * f))
        top, left = int(rng.integers(bh - height + 1)), int(rng.integers(bw - width + 1))
        image, pasted = paste(background, obj_image, obj_mask, top, left, height, width, self.feather)
        if rng.random() < self.occluded_target_probability:
            visible = scene_mask & ~pasted
            n_visible = np.count_nonzero(visible)
            if n_visible >= self.min_pixels and n_visible >= self.min_visible * np.count_nonzero(scene_mask):
                return image, visible
        return image, pasted
