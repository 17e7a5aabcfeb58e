"""PASCAL VOC 2012 instances: one object per instance.

root/JPEGImages/<id>.jpg + root/SegmentationObject/<id>.png, a palette PNG whose index is
the instance id (0 background, 255 void: the boundary band and unlabelled objects, never part
of an object); the ids are those listed in root/ImageSets/Segmentation/<split>.txt
(train: 1464 images, val: 1449). Instances under `min_pixels` pixels are left out. Every listed
PNG is read once at construction to index its instances.
"""

from __future__ import annotations

from pathlib import Path

from ...annotation_files import VOC_VOID, instance_areas, read_id_list, read_voc_instances
from .base import DEFAULT_MIN_PIXELS, ItemListSource, ObjectSample
from .readers import image_loader, mask_loader_equal


class PascalVocSource(ItemListSource):
    name = "pascal_voc"

    def __init__(self, root: str, split: str = "train", min_pixels: int = DEFAULT_MIN_PIXELS):
        root = Path(root)
        list_file = root / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not list_file.is_file():
            raise ValueError(f"no PASCAL VOC split list {list_file}")
        self.items: list[tuple[str, Path, Path, int]] = []
        for image_id in read_id_list(list_file):
            png = root / "SegmentationObject" / f"{image_id}.png"
            for value, area in instance_areas(read_voc_instances(png), void=VOC_VOID):
                if area >= min_pixels:
                    self.items.append((image_id, root / "JPEGImages" / f"{image_id}.jpg", png, value))
        if not self.items:
            raise ValueError(f"no PASCAL VOC instances found under {root} for split {split!r}")

    def __getitem__(self, i: int) -> ObjectSample:
        image_id, image, png, value = self.items[i]
        return ObjectSample(self.name, image_id, image_loader(image), mask_loader_equal(png, value))
