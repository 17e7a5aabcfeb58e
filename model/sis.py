"""Structural integrity strategy (SIS): keep only the object parts the user clicked.

After thresholding at 0.5, keep the connected foreground components that contain at
least one positive click lying on a foreground pixel; if none qualifies, the mask is
empty. The paper says eight-connected (our default); the authors' released flood fill is
four-connected (connectivity=4).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage

from .clicks import Click, pixel_of

PAPER_CONNECTIVITY = 8
RELEASED_CODE_CONNECTIVITY = 4


def apply_sis(mask: np.ndarray, clicks: Sequence[Click], connectivity: int = PAPER_CONNECTIVITY) -> np.ndarray:
    """(H, W) bool -> (H, W) bool with only the components that hold a positive click.

    clicks are (x, y) in pixels of the mask's own resolution.
    """
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    mask = np.asarray(mask, dtype=bool)
    h, w = mask.shape
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    labels, _ = ndimage.label(mask, structure=structure)
    keep = set()
    for c in clicks:
        if not c.positive:
            continue
        r, col = pixel_of(c, w, h)
        if labels[r, col] > 0:
            keep.add(int(labels[r, col]))
    if not keep:
        return np.zeros_like(mask)
    return np.isin(labels, sorted(keep))
