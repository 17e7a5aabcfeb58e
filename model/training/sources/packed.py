"""A packed training set written by `fcanet pack` (`model/training/pack.py`).

spec: {type: packed, path: P.npz, part: K}: the objects of the K-th source of the config
that wrote the pack (None: every object of every part). Image ids are the original
sources', so splits by image keep working. The file is read once per process.
"""

from __future__ import annotations

from functools import lru_cache, partial

import numpy as np

from ..pack import PackedSet
from .base import ItemListSource, ObjectSample


@lru_cache(maxsize=4)
def _packed(path: str) -> PackedSet:
    return PackedSet(path)


def _image(path: str, image: int) -> np.ndarray:
    return _packed(path).image(image)


def _mask(path: str, obj: int) -> np.ndarray:
    return _packed(path).mask(obj)


class PackedSource(ItemListSource):
    name = "packed"

    def __init__(self, path: str, part: int | None = None):
        self.path = str(path)
        packed = _packed(self.path)
        if part is not None and not 0 <= part < len(packed.parts):
            raise ValueError(f"{path} has parts 0..{len(packed.parts) - 1}, not {part}")
        if part is not None:
            self.name = f"packed:{packed.parts[part]['name']}"
        ids = packed.index["image_ids"]
        # (image id, image index, object index)
        self.items = [(ids[packed.image_of(o)], packed.image_of(o), o) for o in range(len(packed.objects))
                      if part is None or int(packed.objects[o][2]) == part]
        if not self.items:
            raise ValueError(f"{path}: part {part} holds no objects")

    def __getitem__(self, i: int) -> ObjectSample:
        image_id, image, obj = self.items[i]
        return ObjectSample(self.name, image_id, partial(_image, self.path, image), partial(_mask, self.path, obj))
