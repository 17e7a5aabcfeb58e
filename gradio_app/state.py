"""Per-browser-session state of the app (kept in gr.State)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from model import Click


@dataclass
class Session:
    """image: (H, W, 3) uint8 original; clicks in click order (first = anchor), (x, y) in
    original pixels; mask: (H, W) bool of the last prediction; seconds: time of each click;
    refining: the mask is the fast one and the refined one is on its way."""

    image: np.ndarray | None = None
    clicks: list[Click] = field(default_factory=list)
    mask: np.ndarray | None = None
    seconds: list[float] = field(default_factory=list)
    model_version: str = ""
    refining: bool = False
