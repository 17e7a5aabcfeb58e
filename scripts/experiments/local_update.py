"""Screening: does keeping the previous mask away from the newest click help the robot user?

Each click re-predicts the whole mask, so a correction in one place can undo what was right
elsewhere. The variants keep the previous mask except near the newest click:

- "none": the plain predictor (every click re-predicts everything).
- "component": accept only the changed regions (8-connected) that touch a disk of
  `radius` x sqrt(object area) around the newest click (radius 0: the region holding it).
- "disk": accept every change inside that disk, nothing outside it.

    python scripts/experiments/local_update.py --coco ../shared/datasets/COCO_MVal --every 16 \
        --variant none component:0 component:0.5 disk:0.5

Training images only (COCO_MVal, BSDS500). Prints one JSON line per variant.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from model import Predictor  # noqa: E402
from model.clicks import pixel_of, validate_clicks  # noqa: E402
from model.prediction import Prediction  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tune_refinement import screen, screening_samples  # noqa: E402


class LocalUpdate:
    """Wraps a predictor; remembers the last mask of the running click sequence."""

    def __init__(self, predictor: Predictor, kind: str, radius: float):
        self.predictor, self.kind, self.radius = predictor, kind, radius
        self.prev: np.ndarray | None = None

    def predict(self, image, clicks, *, sis: bool = True) -> Prediction:
        pred = self.predictor.predict(image, clicks, sis=sis)
        mask = pred.mask
        if len(clicks) > 1 and self.prev is not None and self.kind != "none":
            mask = self.merge(self.prev, mask, clicks)
        self.prev = mask
        return Prediction(mask, pred.probability, pred.model_version, pred.seconds)

    def merge(self, prev: np.ndarray, new: np.ndarray, clicks) -> np.ndarray:
        h, w = new.shape
        c = validate_clicks(clicks, w, h)[-1]
        r, col = pixel_of(c, w, h)
        changed = prev ^ new
        if not changed.any():
            return new
        area = max(1, int(np.count_nonzero(prev | new)))
        rad = self.radius * np.sqrt(area)
        yy, xx = np.ogrid[:h, :w]
        disk = (yy - r) ** 2 + (xx - col) ** 2 <= max(rad, 0.5) ** 2
        if self.kind == "disk":
            accept = changed & disk
        else:
            labels, _ = ndimage.label(changed, structure=np.ones((3, 3), bool))
            keep = np.unique(labels[disk & changed])
            keep = keep[keep > 0]
            accept = np.isin(labels, keep)
        return np.where(accept, new, prev)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coco")
    parser.add_argument("--bsds")
    parser.add_argument("--every", type=int, default=16)
    parser.add_argument("--variant", nargs="+", default=["none", "component:0", "disk:0.5"])
    args = parser.parse_args()
    if bool(args.coco) == bool(args.bsds):
        parser.error("give one of --coco and --bsds")
    samples = screening_samples(args.coco, args.bsds, args.every)
    base = Predictor.from_checkpoint()
    for text in args.variant:
        kind, _, radius = text.partition(":")
        if kind not in ("none", "component", "disk"):
            parser.error(f"unknown variant {text!r}: use none, component:R or disk:R")
        result = screen(LocalUpdate(base, kind, float(radius or 0)), samples, text)
        print(json.dumps({"variant": text, "set": "coco" if args.coco else "bsds", **result}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
