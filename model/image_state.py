"""Per-image state: everything a prediction needs that depends on the image alone.

The way segment-anything splits `set_image` from `predict`: a labeler clicks many times on one
image, so decoding, resizing to the working size, normalising (and padding) the network's input,
the guided filter's image terms (`GuideStatistics`) and the band cut's image-only weights
(`CutWeights`) are computed once; a click then costs only the click maps, the forward pass and the
click-dependent part of each refinement.

The backbone's features cannot be kept: FCA-Net feeds the click maps into the network at its input
(`model/network/fcanet.py` concatenates them with the image before the first convolution of the
first-click branch and the fusion stages), so every layer's activations depend on the clicks.

`ImageStateCache` is a small LRU of states keyed by the image's content hash, so that callers of
`Predictor.predict(image, clicks)` (the backend, the app) get the reuse without holding anything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from .band_cut import CutWeights
from .bounded_cache import BoundedCache
from .edge_refine import GuideStatistics
from .preprocess import WorkingFrame


def content_key(rgb: np.ndarray) -> tuple:
    """A key that names an (H, W, 3) uint8 image by its pixels: blake2b of its bytes and its shape."""
    rgb = np.ascontiguousarray(rgb)
    return hashlib.blake2b(rgb.data, digest_size=16).digest(), rgb.shape


@dataclass(frozen=True)
class ImageState:
    """One image made ready for clicks by `Predictor.set_image`.

    key: `content_key` of rgb plus the working short side; rgb: (H, W, 3) uint8 original;
    frame: original -> working geometry; work: (h, w, 3) uint8 working image; tensor: (1, 3, h', w')
    float32 normalised network input (padded to the grid when the predictor aligns it), on the
    predictor's device and in its memory format; guide: the guided filter's image terms (None when
    edge refinement is off); cut: the band cut's image terms (None when the band cut is off).
    """

    key: tuple
    rgb: np.ndarray
    frame: WorkingFrame
    work: np.ndarray
    tensor: torch.Tensor
    guide: GuideStatistics | None
    cut: CutWeights | None

    @property
    def nbytes(self) -> int:
        total = self.rgb.nbytes + self.work.nbytes + self.tensor.element_size() * self.tensor.nelement()
        if self.guide is not None:
            total += self.guide.guide.nbytes + self.guide.mean.nbytes + self.guide.inverse.nbytes
        if self.cut is not None:
            total += self.cut.colour_index.nbytes + self.cut.pairwise.nbytes
        return total


class ImageStateCache(BoundedCache[ImageState]):
    """At most `size` ImageStates by content key, least recently used dropped first; thread-safe
    (`model/bounded_cache.py`). About 90 bytes a working pixel each (30 MB for a 512 x 683 working
    image with every refinement on)."""

    def __init__(self, size: int = 4):
        if size < 0:
            raise ValueError(f"image state cache size must be >= 0, got {size}")
        super().__init__(size)
        self.size = size

    def put(self, state: ImageState) -> None:  # type: ignore[override] - keyed by the state itself
        super().put(state.key, state)
