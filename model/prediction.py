"""What a prediction returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Prediction:
    """A mask for one object at the original image's size.

    mask: (H, W) bool, True on the object (after SIS when it was asked for).
    probability: (H, W) float32 in [0, 1], the network's foreground probability.
    model_version: version string of the model that made it.
    seconds: wall time of the whole predict call (up to this stage, for `Predictor.predict_stages`).
    final: False for the fast stage of `Predictor.predict_stages` (the refined one follows).
    """

    mask: np.ndarray
    probability: np.ndarray
    model_version: str
    seconds: float = 0.0
    final: bool = True

    def mask_u8(self) -> np.ndarray:
        """(H, W) uint8 mask with 0 for background and 255 for the object."""
        return self.mask.astype(np.uint8) * 255
