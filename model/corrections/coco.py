"""Export the store as a COCO instance-segmentation file (masks as pycocotools RLE).

Images are listed once per stored image (by sha256) or reference; each record becomes one
annotation with `segmentation` = {"size": [H, W], "counts": str} (compressed RLE),
`bbox` = [x, y, w, h] in pixels, `area`, and, beyond COCO, `clicks` ([[x, y, positive], ...]
in click order, the first is the anchor) and `record_id`, and the provenance of each correction:
`labeler` (who made it, also kept as `author`), `model_version` (the model whose predictions drew
the mask), `click_count` and `lead_time_s` (seconds spent; None where unknown). Records without
labels get the category "object".
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .files import atomic_write
from .records import CorrectionRecord

DEFAULT_CATEGORY = "object"


def mask_to_rle(mask: np.ndarray) -> dict[str, Any]:
    """(H, W) bool -> COCO compressed RLE with `counts` as text (JSON-ready)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def coco_dataset(store, records: Sequence[CorrectionRecord]) -> dict[str, Any]:
    """The COCO dict for the given records (masks read from the store)."""
    from pycocotools import mask as mask_utils

    images: dict[str, dict[str, Any]] = {}
    categories: dict[str, int] = {}
    annotations = []
    for record in records:
        key = record.image_sha256 or record.image_ref or record.id
        if key not in images:
            images[key] = {
                "id": len(images) + 1,
                "file_name": record.image_path or record.image_ref,
                "width": record.width,
                "height": record.height,
                "sha256": record.image_sha256,
                "image_ref": record.image_ref,
            }
        label = record.labels[0] if record.labels else DEFAULT_CATEGORY
        category_id = categories.setdefault(label, len(categories) + 1)
        mask = store.load_mask(record)
        rle = mask_to_rle(mask)
        x, y, w, h = mask_utils.toBbox({**rle, "counts": rle["counts"].encode("ascii")}).tolist()
        annotations.append({
            "id": len(annotations) + 1,
            "image_id": images[key]["id"],
            "category_id": category_id,
            "segmentation": rle,
            "area": int(mask.sum()),
            "bbox": [float(x), float(y), float(w), float(h)],
            "iscrowd": 0,
            "clicks": [c.to_list() for c in record.clicks],
            "record_id": record.id,
            "source": record.source,
            "project": record.project,
            "task_id": record.task_id,
            "annotation_id": record.annotation_id,
            "author": record.author,
            "labeler": record.author,
            "model_version": record.model_version,
            "click_count": record.click_count,
            "lead_time_s": record.lead_time_s,
        })
    return {
        "info": {"description": "fcanet corrections", "version": "1.0"},
        "images": list(images.values()),
        "annotations": annotations,
        "categories": [{"id": i, "name": name, "supercategory": ""} for name, i in categories.items()],
    }


def export_coco(store, out_path: str | os.PathLike, *, source: str | None = None,
                project: str | None = None, **filters: Any) -> dict[str, int]:
    """Write the COCO file atomically; returns {"images": n, "annotations": n, "categories": n}.
    filters: further `CorrectionStore.list` filters (labeler, model_version, ...)."""
    data = coco_dataset(store, store.list(source=source, project=project, **filters))
    atomic_write(Path(out_path), json.dumps(data, indent=1).encode("utf-8"))
    return {k: len(data[k]) for k in ("images", "annotations", "categories")}
