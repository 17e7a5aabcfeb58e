"""The anchor set: fixed objects of the base domain that the gate's forgetting check scores.

A fine-tune that improves the new domain can still get worse on everything else. The gate
therefore scores base and candidate on a fixed set of objects that stand for what the model
was good at before:

- what the deployment configures (`--anchor-set NAME:ROOT`, any `model.evaluation.datasets`
  layout, e.g. `coco_mval:/data/COCO_MVal` or a folder of `images/` + `masks/` as
  `berkeley:/data/anchors`), `--anchor-count` objects spread evenly over it; else
- a held-back slice of the earliest corrections (the first images the store received, before the
  loop moved the model anywhere): never trained on, never part of the held-out split.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

#: Fewer images than this in the store: no slice is held back (the held-out split needs them).
MIN_IMAGES_FOR_CORRECTION_ANCHORS = 7


def parse_anchor_set(spec: str) -> tuple[str, str]:
    """'NAME:ROOT' -> (name, root); refuses anything else with a message saying the format."""
    from ..errors import FcanetInputError

    name, sep, root = spec.partition(":")
    if not sep or not name or not root:
        raise FcanetInputError(f"an anchor set is NAME:ROOT (e.g. coco_mval:/data/COCO_MVal), got {spec!r}")
    return name.strip(), root.strip()


def configured_anchor_samples(spec: str, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """`count` (image, gt) pairs spread evenly over the named dataset (the same ones every time)."""
    from ..errors import FcanetInputError
    from ..evaluation.datasets import load_dataset

    name, root = parse_anchor_set(spec)
    try:
        samples = load_dataset(name, root)
    except (KeyError, ValueError, OSError) as exc:
        raise FcanetInputError(f"cannot read the anchor set {spec!r}: {exc}") from None
    if not samples:
        raise FcanetInputError(f"the anchor set {spec!r} holds no objects")
    picks = np.linspace(0, len(samples) - 1, num=min(count, len(samples))).round().astype(int)
    return [(samples[i].load_image(), samples[i].gt) for i in sorted(set(picks.tolist()))]


def earliest_correction_anchors(records: Sequence, fraction: float):
    """(anchors, rest): the records of the earliest `fraction` of distinct images (by the order the
    store received them), or no anchors when the store has too few images to spare them."""
    order: list[str] = []
    for r in records:  # store.list() is in the order records were first stored
        if r.image_sha256 and r.image_path and r.image_sha256 not in order:
            order.append(r.image_sha256)
    if fraction <= 0 or len(order) < MIN_IMAGES_FOR_CORRECTION_ANCHORS:
        return [], list(records)
    chosen = set(order[: max(1, math.floor(len(order) * fraction))])
    return [r for r in records if r.image_sha256 in chosen], [r for r in records if r.image_sha256 not in chosen]
