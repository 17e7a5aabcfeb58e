"""Choose the edge refinement's radius on training images, not on the benchmarks.

    python scripts/tune_edge_refine.py --coco ../shared/datasets/COCO_MVal [--every 16] [--radii 0 8 16 24]

Scores the robot user (SIS, 20 clicks, early stop at 0.90) on every N-th COCO_MVal object (one or
two per category) with the bundled model (or --checkpoint) and each guided-filter radius (0: off,
the paper), and prints NoC@85 / NoC@90 / mIoU@1,5 per setting as JSON lines. COCO_MVal is training
data, so its absolute figures flatter the model; only the comparison between radii is used.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model import Predictor  # noqa: E402
from model.edge_refine import EdgeRefineConfig  # noqa: E402
from model.evaluation.datasets import load_dataset  # noqa: E402
from model.evaluation.loop import evaluate_samples  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coco", required=True, help="the COCO_MVal folder")
    parser.add_argument("--checkpoint")
    parser.add_argument("--every", type=int, default=16)
    parser.add_argument("--radii", type=int, nargs="+", default=[0, 8, 16, 24])
    parser.add_argument("--eps", type=float, default=EdgeRefineConfig().eps)
    args = parser.parse_args()
    samples = load_dataset("coco_mval", args.coco)[:: args.every]
    for radius in args.radii:
        refine = EdgeRefineConfig(radius=radius, eps=args.eps) if radius else False
        predictor = Predictor.from_checkpoint(args.checkpoint, edge_refine=refine)
        result = evaluate_samples(predictor, samples, early_stop=True, desc=f"radius {radius}")
        miou = result.miou_per_click
        print(json.dumps({"radius": radius, "eps": args.eps if radius else None, "samples": len(samples),
                          "noc85": result.noc["85"], "noc90": result.noc["90"], "over_max90": result.over_max["90"],
                          "miou1": round(miou[0], 4), "miou5": round(miou[4], 4)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
