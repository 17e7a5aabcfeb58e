"""A weighted mix of data sources as a map-style dataset of augmented, clicked crops.

Index g is a global sample number: item g is a pure function of (seed, g), so a run that
resumes at step k reads exactly the samples it would have read.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .augment import AugmentConfig, augment_with_anchor
from .click_sampler import ClickSimulationConfig, simulate_clicks

MAX_CLICKS = 21
MIN_OBJECT_PIXELS = 64


class MixedObjectDataset(torch.utils.data.Dataset):
    """Items: image (3, S, S) uint8, gt (1, S, S) float32, clicks (21, 3) float32 rows
    [x, y, positive] padded with -1, num_clicks int."""

    def __init__(self, sources: Sequence, weights: Sequence[float], length: int, seed: int,
                 augment_cfg: AugmentConfig = AugmentConfig(), click_cfg: ClickSimulationConfig = ClickSimulationConfig()):
        if len(sources) != len(weights) or not sources:
            raise ValueError("give one weight per data source")
        w = np.asarray(weights, dtype=np.float64)
        if (w < 0).any() or w.sum() <= 0:
            raise ValueError("source weights must be non-negative and not all zero")
        self.sources, self.p = list(sources), w / w.sum()
        self.length, self.seed = int(length), int(seed)
        self.augment_cfg, self.click_cfg = augment_cfg, click_cfg

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, g: int) -> dict:
        rng = np.random.default_rng([self.seed, int(g)])
        for _attempt in range(10):
            source = self.sources[int(rng.choice(len(self.sources), p=self.p))]
            obj = source[int(rng.integers(len(source)))]
            image, mask, anchor = augment_with_anchor(obj.load_image(), obj.load_mask(), rng, self.augment_cfg)
            if np.count_nonzero(mask) >= MIN_OBJECT_PIXELS:
                break
        clicks = simulate_clicks(mask, rng, self.click_cfg, anchor=anchor)[:MAX_CLICKS]
        rows = np.full((MAX_CLICKS, 3), -1.0, dtype=np.float32)
        for i, c in enumerate(clicks):
            rows[i] = (c.x, c.y, 1.0 if c.positive else 0.0)
        return {
            "image": torch.from_numpy(image).permute(2, 0, 1).contiguous(),
            "gt": torch.from_numpy(mask.astype(np.float32))[None],
            "clicks": torch.from_numpy(rows),
            "num_clicks": torch.tensor(len(clicks)),
        }
