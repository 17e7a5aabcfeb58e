"""BSDS500 region maps: every human segment is a candidate object.

groundTruth/<split>/<id>.mat holds one label map per annotator
(groundTruth[0, k]['Segmentation'][0, 0]). Segments under `min_area` or over `max_area`
of the image are skipped, and a segment nearly identical (IoU > 0.9) to one already
taken from another annotator of the same image is skipped too. The index is built once
at construction (about 400 files).
"""

from __future__ import annotations

from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import scipy.io

from .base import ItemListSource, ObjectSample
from .readers import image_loader


@lru_cache(maxsize=64)
def _label_maps(mat_path: str) -> tuple[np.ndarray, ...]:
    gt = scipy.io.loadmat(mat_path)["groundTruth"]
    return tuple(np.asarray(gt[0, k]["Segmentation"][0, 0]) for k in range(gt.shape[1]))


def _segment(mat_path: str, annotator: int, label: int) -> np.ndarray:
    return _label_maps(mat_path)[annotator] == label


class Bsds500Source(ItemListSource):
    name = "bsds500"

    def __init__(self, root: str, splits=("train", "val", "test"), min_area: float = 0.01,
                 max_area: float = 0.8, dedupe_iou: float = 0.9):
        root = Path(root)
        self.items: list[tuple[str, Path, str, int, int]] = []
        for split in splits:
            for mat in sorted((root / "groundTruth" / split).glob("*.mat")):
                image = next((p for p in (root / "images" / split).glob(mat.stem + ".*")), None)
                if image is None:
                    continue
                kept: list[np.ndarray] = []
                for k, seg in enumerate(_label_maps(str(mat))):
                    total = seg.size
                    labels, counts = np.unique(seg, return_counts=True)
                    for label, count in zip(labels, counts):
                        if not (min_area * total <= count <= max_area * total):
                            continue
                        m = seg == label
                        if any(np.count_nonzero(m & o) / np.count_nonzero(m | o) > dedupe_iou for o in kept):
                            continue
                        kept.append(m)
                        self.items.append((mat.stem, image, str(mat), k, int(label)))
                _label_maps.cache_clear()
        if not self.items:
            raise ValueError(f"no BSDS500 segments found under {root}")

    def __getitem__(self, i: int) -> ObjectSample:
        image_id, image, mat, k, label = self.items[i]
        return ObjectSample(self.name, image_id, image_loader(image), partial(_segment, mat, k, label))
