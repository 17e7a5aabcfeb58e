"""COCO_MVal as shared here (img/<id>.jpg, gt/<cat><NN>_<id>.png, instances.csv), and the
common img/<name>.jpg + gt/<name>.png layout. Masks are 0/255."""

from __future__ import annotations

import csv
from pathlib import Path

from .base import ItemListSource, ObjectSample
from .readers import image_loader, mask_loader_binary

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


class CocoMvalSource(ItemListSource):
    name = "coco_mval"

    def __init__(self, root: str):
        root = Path(root)
        self.items: list[tuple[str, Path, Path]] = []
        csv_path = root / "instances.csv"
        if csv_path.is_file():
            with open(csv_path, newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    self.items.append((Path(row["image"]).stem, root / "img" / row["image"], root / "gt" / row["mask"]))
        else:
            images = {p.stem: p for p in (root / "img").iterdir() if p.suffix.lower() in IMAGE_EXTS}
            for mask in sorted((root / "gt").glob("*.png")):
                if mask.stem in images:
                    self.items.append((mask.stem, images[mask.stem], mask))
        if not self.items:
            raise ValueError(f"no COCO_MVal objects found under {root}")

    def __getitem__(self, i: int) -> ObjectSample:
        image_id, img, mask = self.items[i]
        return ObjectSample(self.name, image_id, image_loader(img), mask_loader_binary(mask))
