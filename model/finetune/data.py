"""Corrections as training samples.

Each correction is used two ways: with its real click sequence (its real first click
included), and as an object for the usual click simulation. Real clicks are in original
pixels; the sample is letterboxed into the crop (scaled to fit, centred, zero padding) so
the same transform maps the clicks.
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

import cv2
import numpy as np
import torch

from ..clicks import Click
from ..training.dataset import MAX_CLICKS, MixedObjectDataset
from ..training.sources.base import ObjectSample


def letterbox(image: np.ndarray, mask: np.ndarray, clicks: Sequence[Click], size: int):
    """Fit (H, W) into (size, size) keeping the aspect ratio; clicks follow the same map."""
    h, w = mask.shape
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    top, left = (size - nh) // 2, (size - nw) // 2
    out_img = np.zeros((size, size, 3), np.uint8)
    out_mask = np.zeros((size, size), bool)
    out_img[top:top + nh, left:left + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    out_mask[top:top + nh, left:left + nw] = cv2.resize(mask.astype(np.uint8), (nw, nh),
                                                        interpolation=cv2.INTER_NEAREST).astype(bool)
    sx, sy = nw / w, nh / h
    moved = [Click(min(size - 1, max(0, (c.x + 0.5) * sx - 0.5 + left)),
                   min(size - 1, max(0, (c.y + 0.5) * sy - 0.5 + top)), c.positive) for c in clicks]
    return out_img, out_mask, moved


class CorrectionsSource:
    """The store's records as ObjectSamples (for click simulation); skips records without an image."""

    name = "corrections"

    def __init__(self, store, records):
        self.store = store
        self.records = [r for r in records if r.image_path]
        if not self.records:
            raise ValueError("no corrections with a stored image to train on")

    def __len__(self) -> int:
        return len(self.records)

    def image_id(self, i: int) -> str:
        return self.records[i].image_sha256

    def __getitem__(self, i: int) -> ObjectSample:
        r = self.records[i]
        return ObjectSample(self.name, r.image_sha256, partial(self.store.load_image, r), partial(self.store.load_mask, r))


class RealClickDataset(torch.utils.data.Dataset):
    """Corrections with their own recorded click sequences, letterboxed to crop_size."""

    def __init__(self, source: CorrectionsSource, crop_size: int):
        self.source, self.crop_size = source, crop_size

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, g: int) -> dict:
        r = self.source.records[int(g) % len(self.source)]
        img, mask, clicks = letterbox(self.source.store.load_image(r), self.source.store.load_mask(r),
                                      list(r.clicks), self.crop_size)
        rows = np.full((MAX_CLICKS, 3), -1.0, dtype=np.float32)
        clicks = clicks[:MAX_CLICKS]
        for i, c in enumerate(clicks):
            rows[i] = (c.x, c.y, 1.0 if c.positive else 0.0)
        return {"image": torch.from_numpy(img).permute(2, 0, 1).contiguous(),
                "gt": torch.from_numpy(mask.astype(np.float32))[None],
                "clicks": torch.from_numpy(rows), "num_clicks": torch.tensor(len(clicks))}


class ShareDataset(torch.utils.data.Dataset):
    """Item g comes from datasets[k] with probability shares[k], a pure function of (seed, g)."""

    def __init__(self, datasets: Sequence, shares: Sequence[float], seed: int):
        p = np.asarray(shares, dtype=np.float64)
        self.datasets, self.p, self.seed = list(datasets), p / p.sum(), seed

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)

    def __getitem__(self, g: int) -> dict:
        k = int(np.random.default_rng([self.seed, 7, int(g)]).choice(len(self.datasets), p=self.p))
        return self.datasets[k][int(g)]


def build_finetune_dataset(store, records, crop_size: int, seed: int, original=None,
                           real_share: float = 0.4, simulated_share: float = 0.3, original_share: float = 0.3):
    """Real-click corrections + simulated clicks on corrections + a share of the original data."""
    from ..training.augment import AugmentConfig

    source = CorrectionsSource(store, records)
    parts = [RealClickDataset(source, crop_size),
             MixedObjectDataset([source], [1.0], len(source), seed, AugmentConfig(crop_size=crop_size))]
    shares = [real_share, simulated_share]
    if original is not None and original_share > 0:
        parts.append(original)
        shares.append(original_share)
    return ShareDataset(parts, shares, seed)
