"""Benchmark datasets by name, each a list of lazily loaded samples.

| name | layout | object / ignore |
| --- | --- | --- |
| grabcut | data_GT/<n>.* + boundary_GT/<n>.bmp | 255 object, 128 ignore band |
| berkeley | images/<n>.* + masks/<n>.* (matched by stem) | > 127 object |
| davis | img/<n>.jpg + gt/<n>.png | any value > 0 |
| coco_mval | img/<id>.jpg + gt/<cat><NN>_<id>.png + instances.csv, or img/<n>.jpg + gt/<n>.png | > 127 |
| pascal_voc | JPEGImages + SegmentationObject + SegmentationClass (+ ImageSets/Segmentation/<split>.txt) | one sample per instance, 255 ignore |
| sbd | img/<n>.jpg + inst/<n>.mat (GTinst.Segmentation) | one sample per instance |
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from ..annotation_files import (VOC_VOID, files_by_stem, instance_areas, read_id_list,
                                read_label_map, read_sbd_instances, read_voc_instances)
from ..image_io import load_image


@dataclass(frozen=True)
class Sample:
    """name; load_image() -> (H, W, 3) uint8; gt (H, W) bool; ignore (H, W) bool or None."""

    name: str
    load_image: Callable[[], np.ndarray]
    gt: np.ndarray
    ignore: np.ndarray | None = None


def _loader(path: Path):
    return partial(load_image, str(path))


def load_grabcut(root: Path) -> list[Sample]:
    images = files_by_stem(root / "data_GT")
    out = []
    for mask_path in sorted((root / "boundary_GT").glob("*.bmp")):
        if mask_path.stem not in images:
            continue
        m = read_label_map(mask_path)
        out.append(Sample(mask_path.stem, _loader(images[mask_path.stem]), m == 255, m == 128))
    return out


def load_berkeley(root: Path) -> list[Sample]:
    images = files_by_stem(root / "images")
    masks = files_by_stem(root / "masks")
    return [Sample(stem, _loader(images[stem]), read_label_map(masks[stem]) > 127)
            for stem in sorted(masks) if stem in images]


def load_davis(root: Path) -> list[Sample]:
    images = files_by_stem(root / "img")
    masks = files_by_stem(root / "gt")
    return [Sample(stem, _loader(images[stem]), read_label_map(masks[stem]) > 0)
            for stem in sorted(masks) if stem in images]


def load_coco_mval(root: Path) -> list[Sample]:
    if (root / "instances.csv").is_file():
        with open(root / "instances.csv", newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        return [Sample(Path(r["mask"]).stem, _loader(root / "img" / r["image"]),
                       read_label_map(root / "gt" / r["mask"]) > 127) for r in rows]
    images = files_by_stem(root / "img")
    masks = files_by_stem(root / "gt")
    return [Sample(stem, _loader(images[stem]), read_label_map(masks[stem]) > 127)
            for stem in sorted(masks) if stem in images]


def load_pascal_voc(root: Path, split: str = "val") -> list[Sample]:
    list_file = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    objects = root / "SegmentationObject"
    names = read_id_list(list_file) if list_file.is_file() else sorted(p.stem for p in objects.glob("*.png"))
    out = []
    for name in names:
        inst = read_voc_instances(objects / f"{name}.png")
        ignore = inst == VOC_VOID
        cls_path = root / "SegmentationClass" / f"{name}.png"
        if cls_path.is_file():
            ignore = ignore | (read_label_map(cls_path) == VOC_VOID)
        image = root / "JPEGImages" / f"{name}.jpg"
        for k, _area in instance_areas(inst, void=VOC_VOID):
            out.append(Sample(f"{name}#{k}", _loader(image), inst == k, ignore))
    return out


def load_sbd(root: Path, split: str | None = None) -> list[Sample]:
    list_file = root / f"{split}.txt" if split else None
    mats = sorted((root / "inst").glob("*.mat"))
    if list_file is not None and list_file.is_file():
        wanted = set(read_id_list(list_file))
        mats = [m for m in mats if m.stem in wanted]
    out = []
    for mat in mats:
        seg = read_sbd_instances(mat)
        image = root / "img" / f"{mat.stem}.jpg"
        for k, _area in instance_areas(seg):
            out.append(Sample(f"{mat.stem}#{k}", _loader(image), seg == k))
    return out


LOADERS: dict[str, Callable[[Path], list[Sample]]] = {
    "grabcut": load_grabcut,
    "berkeley": load_berkeley,
    "davis": load_davis,
    "coco_mval": load_coco_mval,
    "pascal_voc": load_pascal_voc,
    "sbd": load_sbd,
}


def load_dataset(name: str, root: str | Path) -> list[Sample]:
    if name not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(LOADERS)}")
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"no dataset folder at {root}")
    samples = LOADERS[name](root)
    if not samples:
        raise ValueError(f"no {name} samples found under {root}")
    return samples
