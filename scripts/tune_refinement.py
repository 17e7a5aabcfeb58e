"""Choose the post-processing settings (edge refinement, graph-cut refinement) on training images,
not on the benchmarks.

    python scripts/tune_refinement.py --coco ../shared/datasets/COCO_MVal [--every 16] \
        [--setting '{"edge": 16}' '{"edge": 16, "graphcut": {"weight": 0.5}}' ...]

Each setting is a JSON object: "edge" is the guided filter's radius (0 or absent: off, the paper),
"graphcut" the GraphCutRefineConfig fields (absent: off), "band" the BandCutConfig fields (absent: off), "zoom" the ZoomInConfig fields (absent: off). Scores the robot user (SIS, 20 clicks,
early stop at 0.90) on every N-th COCO_MVal object (one or two per category) with the bundled model
(or --checkpoint) and prints NoC@85 / NoC@90 / mIoU@1,5 per setting as JSON lines. With --bsds
instead, every N-th BSDS500 segment: their hand-traced boundaries are finer than COCO's polygons, so
they show boundary precision. Both are training data, so their absolute figures flatter the model;
only the comparison between settings is used. The default settings are the edge refinement's radius sweep.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model import Predictor  # noqa: E402
from model.band_cut import BandCutConfig  # noqa: E402
from model.edge_refine import EdgeRefineConfig  # noqa: E402
from model.evaluation.datasets import Sample, load_dataset  # noqa: E402
from model.evaluation.loop import evaluate_samples  # noqa: E402
from model.graphcut_refine import GraphCutRefineConfig  # noqa: E402
from model.training.sources.bsds500 import Bsds500Source  # noqa: E402
from model.zoom_in import ZoomInConfig  # noqa: E402

RADIUS_SWEEP = [json.dumps({"edge": r}) for r in (0, 8, 16, 24)]


def predictor_for(setting: dict, checkpoint: str | None, eps: float) -> Predictor:
    unknown = set(setting) - {"edge", "graphcut", "band", "zoom"}
    if unknown:
        raise SystemExit(f"unknown setting keys {sorted(unknown)}: use 'edge', 'graphcut', 'band' and 'zoom'")
    radius = int(setting.get("edge", 0))
    edge = EdgeRefineConfig(radius=radius, eps=eps) if radius else False
    graphcut = GraphCutRefineConfig(**setting["graphcut"]) if "graphcut" in setting else False
    band = BandCutConfig(**setting["band"]) if "band" in setting else False
    zoom = ZoomInConfig(**setting["zoom"]) if "zoom" in setting else False
    return Predictor.from_checkpoint(checkpoint, edge_refine=edge, graphcut_refine=graphcut, band_cut=band,
                                     zoom_in=zoom)


def bsds_samples(root: str, every: int) -> list[Sample]:
    """Every N-th BSDS500 segment the training source takes (1-80 % of its image) as an evaluation sample."""
    source = Bsds500Source(root)
    out = []
    for i in range(0, len(source), every):
        item = source[i]
        out.append(Sample(f"{item.image_id}-{i}", item.load_image, item.load_mask()))
    return out


def screening_samples(coco: str | None, bsds: str | None, every: int) -> list[Sample]:
    """Every N-th COCO_MVal object, or every N-th BSDS500 segment (give one of the two folders)."""
    return load_dataset("coco_mval", coco)[::every] if coco else bsds_samples(bsds, every)


def screen(predictor, samples: list[Sample], desc: str) -> dict:
    """The robot user (SIS, 20 clicks, early stop at 0.90) on the samples: NoC@85/90, how many never
    reach 90 %, mIoU@1 and @5, and the wall time."""
    start = time.perf_counter()
    result = evaluate_samples(predictor, samples, early_stop=True, desc=desc)
    miou = result.miou_per_click
    return {"samples": len(samples), "noc85": result.noc["85"], "noc90": result.noc["90"],
            "over_max90": result.over_max["90"], "miou1": round(miou[0], 4), "miou5": round(miou[4], 4),
            "seconds": round(time.perf_counter() - start, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coco", help="the COCO_MVal folder")
    parser.add_argument("--bsds", help="the BSDS500 folder: its human segments (finer boundaries than COCO's polygons)")
    parser.add_argument("--checkpoint")
    parser.add_argument("--every", type=int, default=16)
    parser.add_argument("--setting", nargs="+", default=RADIUS_SWEEP, help="JSON objects, one per setting")
    parser.add_argument("--eps", type=float, default=EdgeRefineConfig().eps)
    args = parser.parse_args()
    if bool(args.coco) == bool(args.bsds):
        parser.error("give one of --coco and --bsds")
    samples = screening_samples(args.coco, args.bsds, args.every)
    for text in args.setting:
        setting = json.loads(text)
        predictor = predictor_for(setting, args.checkpoint, args.eps)
        print(json.dumps({"setting": setting, **screen(predictor, samples, text)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
