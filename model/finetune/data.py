"""Corrections as training samples.

Each correction is used two ways: with its real click sequence (its real first click
included), and as an object for the usual click simulation. Both see the object at the scale
the network sees at inference (the base model's short side, with the training scale jitter):
a first version letterboxed whole frames into the crop, which showed DAVIS objects at a third
of their served size, and fine-tuning on that made the model worse on the same videos.
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

import cv2
import numpy as np
import torch

from ..clicks import Click
from ..preprocess import WorkingFrame
from ..training.dataset import MAX_CLICKS, MixedObjectDataset
from ..training.sources.base import ObjectSample


def crop_around_anchor(image: np.ndarray, mask: np.ndarray, clicks: Sequence[Click], short_side: int,
                       size: int, rng: np.random.Generator, scale_range: tuple[float, float] = (1.0, 1.0)):
    """Resize so the short side is short_side * scale (the predictor's working scale, jittered),
    then cut a (size, size) window that contains the first click at a random place in it.

    Clicks keep their order; those that fall outside the window are dropped (the first never
    is). Windows that run past the image are zero padded. Returns (image, mask, clicks) with
    clicks in window pixels.
    """
    h, w = mask.shape
    scale = float(rng.uniform(*scale_range))
    frame = WorkingFrame.for_short_side(h, w, max(1, round(short_side * scale)))
    img = frame.resize_image(image)
    msk = cv2.resize(mask.astype(np.uint8), (frame.work_width, frame.work_height),
                     interpolation=cv2.INTER_NEAREST).astype(bool)
    moved = [frame.to_work(c) for c in clicks]
    hh, ww = msk.shape
    anchor = moved[0]

    def origin(coord: float, extent: int) -> int:
        lo = max(min(0, extent - size), int(np.floor(coord)) - size + 1)
        hi = min(max(0, extent - size), int(np.floor(coord)))
        return int(rng.integers(lo, hi + 1)) if hi >= lo else lo

    top, left = origin(anchor.y, hh), origin(anchor.x, ww)
    out_img = np.zeros((size, size, 3), np.uint8)
    out_mask = np.zeros((size, size), bool)
    y0, x0, y1, x1 = max(0, top), max(0, left), min(hh, top + size), min(ww, left + size)
    out_img[y0 - top:y1 - top, x0 - left:x1 - left] = img[y0:y1, x0:x1]
    out_mask[y0 - top:y1 - top, x0 - left:x1 - left] = msk[y0:y1, x0:x1]
    inside = [Click(c.x - left, c.y - top, c.positive) for c in moved]
    inside = [c for i, c in enumerate(inside) if i == 0 or (0 <= c.x <= size - 1 and 0 <= c.y <= size - 1)]
    first = inside[0]
    inside[0] = Click(min(size - 1.0, max(0.0, first.x)), min(size - 1.0, max(0.0, first.y)), first.positive)
    return out_img, out_mask, inside


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
    """Corrections with their own recorded click sequences, at the inference scale, cropped
    to crop_size around the first click (`crop_around_anchor`); item g is a pure function of
    (seed, g).

    prefixes: each item keeps the first k clicks of its sequence, k uniform in 1..n, instead of all
    n. The labeler made click k after seeing the mask of clicks 1..k-1, so every prefix is a state
    the served model was really asked about; the whole sequence alone teaches only the last one."""

    def __init__(self, source: CorrectionsSource, crop_size: int, short_side: int, seed: int = 0,
                 scale_range: tuple[float, float] = (1.0, 1.0), prefixes: bool = False):
        self.source, self.crop_size, self.short_side = source, crop_size, short_side
        self.seed, self.scale_range, self.prefixes = seed, tuple(scale_range), prefixes

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, g: int) -> dict:
        r = self.source.records[int(g) % len(self.source)]
        rng = np.random.default_rng([self.seed, 11, int(g)])
        recorded = list(r.clicks)
        if self.prefixes and len(recorded) > 1:
            recorded = recorded[:int(rng.integers(1, len(recorded) + 1))]
        img, mask, clicks = crop_around_anchor(self.source.store.load_image(r), self.source.store.load_mask(r),
                                               recorded, self.short_side, self.crop_size, rng,
                                               self.scale_range)
        if rng.random() < 0.5:  # the same flip the simulated samples get
            img, mask = img[:, ::-1].copy(), mask[:, ::-1].copy()
            clicks = [Click(self.crop_size - 1 - c.x, c.y, c.positive) for c in clicks]
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
                           real_share: float = 0.4, simulated_share: float = 0.3, original_share: float = 0.3,
                           short_side: int | None = None, scale_range: tuple[float, float] = (0.75, 1.25),
                           click_prefixes: bool = False):
    """Real-click corrections + simulated clicks on corrections + a share of the original data.

    short_side: the base model's working short side (default: crop_size); both correction
    parts are resized to it, jittered by scale_range, as the original training data was.
    click_prefixes: the real-click part trains on prefixes of the recorded sequences (`RealClickDataset`)."""
    from ..training.augment import AugmentConfig

    short_side = short_side or crop_size
    source = CorrectionsSource(store, records)
    parts = [RealClickDataset(source, crop_size, short_side, seed, scale_range, prefixes=click_prefixes),
             MixedObjectDataset([source], [1.0], len(source), seed,
                                AugmentConfig(crop_size=crop_size, short_side=short_side, scale_range=scale_range))]
    shares = [real_share, simulated_share]
    if original is not None and original_share > 0:
        parts.append(original)
        shares.append(original_share)
    return ShareDataset(parts, shares, seed)
