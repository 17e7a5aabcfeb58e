"""SBD (Semantic Boundaries Dataset) instances: one object per instance.

root/img/<id>.jpg + root/inst/<id>.mat, where GTinst.Segmentation is an instance label map
(0 background, 1..N the instances); the ids are those listed in root/<split>.txt
(train.txt: 8498 images, val.txt: 2857). Instances under `min_pixels` pixels are left out.
Every listed .mat is read once at construction to index its instances.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from ...annotation_files import instance_areas, read_id_list, read_sbd_instances
from .base import DEFAULT_MIN_PIXELS, ItemListSource, ObjectSample
from .readers import image_loader


def _instance(mat_path: str, value: int) -> np.ndarray:
    return read_sbd_instances(mat_path) == value


class SbdSource(ItemListSource):
    name = "sbd"

    def __init__(self, root: str, split: str = "train", min_pixels: int = DEFAULT_MIN_PIXELS):
        root = Path(root)
        list_file = root / f"{split}.txt"
        if not list_file.is_file():
            raise ValueError(f"no SBD split list {list_file}")
        self.items: list[tuple[str, Path, str, int]] = []
        for image_id in read_id_list(list_file):
            mat = root / "inst" / f"{image_id}.mat"
            for value, area in instance_areas(read_sbd_instances(mat)):
                if area >= min_pixels:
                    self.items.append((image_id, root / "img" / f"{image_id}.jpg", str(mat), value))
        if not self.items:
            raise ValueError(f"no SBD instances found under {root} for split {split!r}")

    def __getitem__(self, i: int) -> ObjectSample:
        image_id, image, mat, value = self.items[i]
        return ObjectSample(self.name, image_id, image_loader(image), partial(_instance, mat, value))
