"""Any COCO-style instance annotation file: one object per annotation.

annotation_file: {"images": [{"id", "file_name", "height", "width"}, ...],
"annotations": [{"id", "image_id", "segmentation", "area", "iscrowd"}, ...]}, read with
pycocotools; `segmentation` may be polygons, compressed RLE or uncompressed RLE (annToMask
decodes all three). Images are images_dir/<file_name> (an absolute file_name is used as is,
as in `fcanet corrections export`). Left out: crowd annotations (`skip_crowd`), annotations
without a segmentation, and objects under `min_pixels` pixels (the `area` field, or the
decoded mask's pixel count where that field is missing or 0).
"""

from __future__ import annotations

import contextlib
import io
from functools import partial
from pathlib import Path

import numpy as np

from .base import DEFAULT_MIN_PIXELS, ItemListSource, ObjectSample
from .readers import image_loader


def _annotation_mask(coco, ann_id: int) -> np.ndarray:
    return coco.annToMask(coco.anns[ann_id]).astype(bool)


class CocoJsonSource(ItemListSource):
    name = "coco_json"

    def __init__(self, annotation_file: str, images_dir: str, min_pixels: int = DEFAULT_MIN_PIXELS,
                 skip_crowd: bool = True):
        from pycocotools import mask as mask_utils
        from pycocotools.coco import COCO

        with contextlib.redirect_stdout(io.StringIO()):  # COCO() prints progress lines
            self.coco = COCO(str(annotation_file))
        images_dir = Path(images_dir)
        self.items: list[tuple[str, Path, int]] = []
        for ann in self.coco.dataset.get("annotations", []):
            image = self.coco.imgs.get(ann.get("image_id"))
            if image is None or not ann.get("segmentation") or (skip_crowd and ann.get("iscrowd", 0)):
                continue
            area = ann.get("area") or int(mask_utils.area(self.coco.annToRLE(ann)))
            if area < min_pixels:
                continue
            self.items.append((str(image["id"]), images_dir / image["file_name"], ann["id"]))
        if not self.items:
            raise ValueError(f"no annotations kept from {annotation_file}")

    def __getitem__(self, i: int) -> ObjectSample:
        image_id, image, ann_id = self.items[i]
        return ObjectSample(self.name, image_id, image_loader(image), partial(_annotation_mask, self.coco, ann_id))
