"""What every data source yields: one object of one image, loaded lazily."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

#: Objects with fewer pixels than this (at the file's resolution) are skipped by the sources
#: that take `min_pixels` in pixels (folder_pairs, coco_json, sbd, pascal_voc).
DEFAULT_MIN_PIXELS = 100


@dataclass(frozen=True)
class ObjectSample:
    """One object instance. load_image() -> (H, W, 3) uint8; load_mask() -> (H, W) bool."""

    source: str
    image_id: str
    image_loader: Callable[[], np.ndarray]
    mask_loader: Callable[[], np.ndarray]

    def load_image(self) -> np.ndarray:
        return self.image_loader()

    def load_mask(self) -> np.ndarray:
        return self.mask_loader()


class IndexView:
    """A subset of a source by index list (used for held-out splits)."""

    def __init__(self, source, indices: list[int]):
        self.source, self.indices = source, list(indices)
        self.name = getattr(source, "name", "view")

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> ObjectSample:
        return self.source[self.indices[i]]

    def image_id(self, i: int) -> str:
        return self.source.image_id(self.indices[i])


class ItemListSource:
    """A source indexed by `self.items`, a list of tuples whose first field is the image id.

    Subclasses fill `items` in their constructor and build an ObjectSample in `__getitem__`.
    """

    name = "source"
    items: list[tuple]

    def __len__(self) -> int:
        return len(self.items)

    def image_id(self, i: int) -> str:
        return self.items[i][0]
