"""Training data sources, by name. A spec is a dict {"type": NAME, ...constructor keys}."""

from __future__ import annotations

import importlib

import numpy as np

from .base import IndexView, ObjectSample

#: type -> "module:Class"
SOURCES: dict[str, str] = {
    "coco_mval": "model.training.sources.coco_mval:CocoMvalSource",
    "bsds500": "model.training.sources.bsds500:Bsds500Source",
    "folder_pairs": "model.training.sources.folder_pairs:FolderPairsSource",
    "coco_json": "model.training.sources.coco_json:CocoJsonSource",
    "sbd": "model.training.sources.sbd:SbdSource",
    "pascal_voc": "model.training.sources.pascal_voc:PascalVocSource",
    "packed": "model.training.sources.packed:PackedSource",
    "ccp": "model.training.sources.ccp:CcpSource",
    "copy_paste": "model.training.sources.copy_paste:CopyPasteSource",
}


def build_source(spec: dict):
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind not in SOURCES:
        raise ValueError(f"unknown data source type {kind!r}; known: {sorted(SOURCES)}")
    module, cls = SOURCES[kind].split(":")
    return getattr(importlib.import_module(module), cls)(**spec)


def split_holdout(source, fraction: float, seed: int):
    """(train view, held-out view), split by image so no image is in both."""
    ids = sorted({source.image_id(i) for i in range(len(source))})
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(len(ids) * fraction)))
    held = set(rng.permutation(ids)[:n_val].tolist())
    train = [i for i in range(len(source)) if source.image_id(i) not in held]
    val = [i for i in range(len(source)) if source.image_id(i) in held]
    return IndexView(source, train), IndexView(source, val)


__all__ = ["ObjectSample", "IndexView", "build_source", "split_holdout", "SOURCES"]
