"""Clothing Co-Parsing (CCP): street-fashion photos with pixel labels of clothing and body parts.

Layout: img/<id>.jpg, labels/<id>.png (8-bit label maps, 0 background), labels.txt ("index name"
a line). Candidate objects of one photo:
- the person: every label > 0 (what a user clicking on somebody in a photo wants);
- each large part: a connected region of one label (hair, a face or a leg of `skin`, a shoe, a
  bag...). One label is split into its connected regions (8-connected) because a click selects
  one region: the two shoes or the face and the hands of `skin` are separate objects to a user.
Regions under `min_area` or over `max_area` of the image are skipped, and so is a part equal to
the whole person (IoU above `dedupe_iou`). The index reads the 600 label maps once.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import cv2
import numpy as np

from ...annotation_files import read_label_map
from .base import ItemListSource, ObjectSample
from .readers import image_loader

#: `label` of the whole-person object in an item.
PERSON = -1


def read_label_names(path: Path) -> dict[int, str]:
    """labels.txt -> {index: name} (empty when the file is missing)."""
    if not path.is_file():
        return {}
    names = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0].isdigit():
            names[int(parts[0])] = parts[1].strip()
    return names


def _components(region: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """(count incl. background, (H, W) int32 component ids, per-id pixel counts)."""
    count, ids, stats, _ = cv2.connectedComponentsWithStats(region.astype(np.uint8), connectivity=8)
    return count, ids, stats[:, cv2.CC_STAT_AREA]


def ccp_mask(label_path: str, label: int, component: int) -> np.ndarray:
    """(H, W) bool: the person (label PERSON) or component `component` of `label`."""
    labels = read_label_map(label_path)
    if label == PERSON:
        return labels > 0
    _, ids, _ = _components(labels == label)
    return ids == component


class CcpSource(ItemListSource):
    """Items: (image id, image path, label path, label or PERSON, component id; 0 for the person)."""

    name = "ccp"

    def __init__(self, root: str, min_area: float = 0.01, max_area: float = 0.9, person: bool = True,
                 parts: bool = True, exclude_labels: tuple[str, ...] = (), dedupe_iou: float = 0.9):
        root = Path(root)
        if not (person or parts):
            raise ValueError("CCP source: take the person, its parts or both (person and parts are both off)")
        names = read_label_names(root / "labels.txt")
        unknown = set(exclude_labels) - set(names.values())
        if unknown and names:
            raise ValueError(f"CCP source: unknown labels to exclude {sorted(unknown)}")
        excluded = {i for i, n in names.items() if n in set(exclude_labels)}
        images = {p.stem: p for p in (root / "img").glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")}
        self.items: list[tuple[str, Path, str, int, int]] = []
        for label_file in sorted((root / "labels").glob("*.png")):
            image = images.get(label_file.stem)
            if image is None:
                continue
            labels = read_label_map(label_file)
            total = labels.size
            person_mask = labels > 0
            person_area = int(np.count_nonzero(person_mask))
            if person and min_area * total <= person_area <= max_area * total:
                self.items.append((label_file.stem, image, str(label_file), PERSON, 0))
            if not parts:
                continue
            for value in np.unique(labels):
                if value == 0 or int(value) in excluded:
                    continue
                count, ids, areas = _components(labels == value)
                for k in range(1, count):
                    if not min_area * total <= areas[k] <= max_area * total:
                        continue
                    # A part that is (nearly) the whole person, e.g. a full-body suit, adds nothing.
                    if person_area and areas[k] / person_area > dedupe_iou:
                        continue
                    self.items.append((label_file.stem, image, str(label_file), int(value), k))
        if not self.items:
            raise ValueError(f"no CCP objects found under {root} (expected img/<id>.jpg and labels/<id>.png)")

    def __getitem__(self, i: int) -> ObjectSample:
        image_id, image, label_path, label, component = self.items[i]
        return ObjectSample(self.name, image_id, image_loader(image), partial(ccp_mask, label_path, label, component))
