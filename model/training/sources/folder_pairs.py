"""Any image folder with a mask folder beside it, matched by file stem.

images_dir/<stem>.<jpg|png|...> + masks_dir/<stem><mask_suffix>.<png|bmp|tif|...> (the two
extensions need not agree). A mask is binary (any nonzero value is the object) or, with
`instances: true`, an instance label map (each nonzero value one object, 0 background);
palette PNGs are read by index. Images without a mask are left out, as are objects under
`min_pixels` pixels. Every mask is read once at construction to index its objects.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...annotation_files import files_by_stem, instance_areas, read_label_map
from .base import DEFAULT_MIN_PIXELS, ItemListSource, ObjectSample
from .readers import image_loader, mask_loader_equal, mask_loader_nonzero


class FolderPairsSource(ItemListSource):
    name = "folder_pairs"

    def __init__(self, images_dir: str, masks_dir: str, mask_suffix: str = "",
                 min_pixels: int = DEFAULT_MIN_PIXELS, instances: bool = False):
        images = files_by_stem(images_dir)
        # (image id, image path, mask path, instance value or None for "any nonzero")
        self.items: list[tuple[str, Path, Path, int | None]] = []
        for mask_stem, mask in sorted(files_by_stem(masks_dir).items()):
            if not mask_stem.endswith(mask_suffix):
                continue
            stem = mask_stem[: len(mask_stem) - len(mask_suffix)]
            if stem not in images:
                continue
            labels = read_label_map(mask)
            if instances:
                for value, area in instance_areas(labels):
                    if area >= min_pixels:
                        self.items.append((stem, images[stem], mask, value))
            elif np.count_nonzero(labels) >= min_pixels:
                self.items.append((stem, images[stem], mask, None))
        if not self.items:
            raise ValueError(f"no objects found in {masks_dir} matching images in {images_dir}")

    def __getitem__(self, i: int) -> ObjectSample:
        image_id, image, mask, value = self.items[i]
        masks = mask_loader_nonzero(mask) if value is None else mask_loader_equal(mask, value)
        return ObjectSample(self.name, image_id, image_loader(image), masks)
