"""Export the store as a COCO instance-segmentation file (masks as pycocotools RLE).

Images are listed once per stored image (by sha256) or reference; each record becomes one
annotation with `segmentation` = {"size": [H, W], "counts": str} (compressed RLE),
`bbox` = [x, y, w, h] in pixels, `area`, and, beyond COCO, `clicks` ([[x, y, positive], ...]
in click order, the first is the anchor), `dropped_clicks` (submitted clicks that were not
stored, each with its "reason"), `region_id` and `record_id`, and the provenance of each
correction: `labeler` (who made it, also kept as `author`), `model_version` (the model whose
predictions drew the mask), `click_count` and `lead_time_s` (seconds spent; None where unknown).
Records without labels get the category "object". A record that cannot be read is skipped and
reported, never fatal.
"""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from ..image_io import max_image_pixels
from .files import atomic_write
from .records import CorrectionRecord, StoreError

log = logging.getLogger(__name__)

DEFAULT_CATEGORY = "object"


def mask_to_rle(mask: np.ndarray) -> dict[str, Any]:
    """(H, W) bool -> COCO compressed RLE with `counts` as text (JSON-ready)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def mask_geometry(mask: np.ndarray) -> dict[str, Any]:
    """A COCO annotation's shape fields for an (H, W) bool mask: `segmentation` (compressed RLE),
    `area` (pixels) and `bbox` ([x, y, w, h] in pixels)."""
    from pycocotools import mask as mask_utils

    rle = mask_to_rle(mask)
    x, y, w, h = mask_utils.toBbox({**rle, "counts": rle["counts"].encode("ascii")}).tolist()
    return {"segmentation": rle, "area": int(mask.sum()), "bbox": [float(x), float(y), float(w), float(h)]}


def load_mask_checked(store, record: CorrectionRecord) -> np.ndarray:
    """A record's mask, refusing (StoreError) before decoding anything over the image pixel
    limit or not of the record's size; a missing or corrupt file raises too."""
    if not (record.width > 0 and record.height > 0) or record.width * record.height > max_image_pixels():
        raise StoreError(f"the record says its mask is {record.width}x{record.height}, outside the image "
                         f"limit of {max_image_pixels()} pixels")
    data = store.files.read(record.mask_path)
    with Image.open(io.BytesIO(data)) as img:  # reads the header only
        if img.size != (record.width, record.height):
            raise StoreError(f"the mask file is {img.size[0]}x{img.size[1]}, the record says "
                             f"{record.width}x{record.height}")
    return store.load_mask(record)


def coco_dataset(store, records: Sequence[CorrectionRecord],
                 skipped: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The COCO dict for the given records (masks read from the store).

    A record whose mask cannot be used (missing or corrupt file, a size that disagrees with
    the record or exceeds the image pixel limit) is left out, never fatal: (record id, reason)
    is appended to `skipped` and logged.
    """
    images: dict[str, dict[str, Any]] = {}
    categories: dict[str, int] = {}
    annotations = []
    for record in records:
        try:
            mask = load_mask_checked(store, record)
        except Exception as exc:  # noqa: BLE001 - one bad record must not stop the export
            reason = f"{type(exc).__name__}: {str(exc)[:200]}"
            log.warning("export: skipping correction %s: %s", record.id, reason)
            if skipped is not None:
                skipped.append((record.id, reason))
            continue
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
        annotations.append({
            "id": len(annotations) + 1,
            "image_id": images[key]["id"],
            "category_id": category_id,
            **mask_geometry(mask),
            "iscrowd": 0,
            "clicks": [c.to_list() for c in record.clicks],
            "dropped_clicks": [dict(d) for d in record.dropped_clicks],
            "region_id": record.region_id,
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
                project: str | None = None, skipped: list[tuple[str, str]] | None = None,
                **filters: Any) -> dict[str, int]:
    """Write the COCO file atomically; returns {"images": n, "annotations": n, "categories": n}.
    Records that cannot be exported are left out and listed in `skipped` (see coco_dataset);
    filters: further `CorrectionStore.list` filters (labeler, model_version, ...)."""
    data = coco_dataset(store, store.list(source=source, project=project, **filters), skipped)
    atomic_write(Path(out_path), json.dumps(data, indent=1).encode("utf-8"))
    return {k: len(data[k]) for k in ("images", "annotations", "categories")}
