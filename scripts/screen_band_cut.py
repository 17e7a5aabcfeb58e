"""Screen the band cut's weights on training images, sharing the forward passes between settings.

    python scripts/screen_band_cut.py --coco ../shared/datasets/COCO_MVal --every 8 --clicks 3
    python scripts/screen_band_cut.py --coco ../shared/datasets/COCO_MVal --every 16 --clicks 2 \
        --setting '{"band": {}}' '{"graphcut": {"weight": 1.0}}'

For every sample the robot user clicks as the EDGE-only output (network + guided filter) leads it, so
that every setting sees the same click sequence and the same network probabilities; each setting
(band-cut weights, or GrabCut with and without its full-resolution cut, the previous default) then
refines those probabilities, and its IoU after each click is recorded (SIS applied). It measures the
refinement alone, not the interaction it would lead to, and costs a forward pass a click instead of
one a click and setting. Prints one JSON line per setting: mean IoU after each click.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `model`

from model import Predictor  # noqa: E402
from model.band_cut import BandCutConfig, band_cut  # noqa: E402
from model.graphcut_refine import GraphCutRefineConfig, graphcut_refine  # noqa: E402
from model.robot_user import first_click, iou, next_click  # noqa: E402
from model.sis import apply_sis  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/, for its sibling
from tune_refinement import screening_samples  # noqa: E402

SETTINGS = [
    {"none": True},
    {"graphcut": {"full_resolution": False}},
    {"graphcut": {}},
    {"band": {}},
    {"band": {"smoothness": 10}},
    {"band": {"smoothness": 25}},
    {"band": {"smoothness": 50}},
    {"band": {"smoothness": 10, "colour": 2}},
    {"band": {"smoothness": 25, "colour": 2}},
    {"band": {"smoothness": 10, "colour": 0.5}},
    {"band": {"smoothness": 25, "max_band": 40}},
]


def refine(setting: dict, state, prob: np.ndarray, work_clicks) -> np.ndarray:
    if "band" in setting:
        return band_cut(state.work, prob, work_clicks, BandCutConfig(**setting["band"]), state.cut)
    if "graphcut" in setting:
        return graphcut_refine(state.work, prob, work_clicks, GraphCutRefineConfig(**setting["graphcut"]))
    return prob


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coco")
    parser.add_argument("--bsds")
    parser.add_argument("--every", type=int, default=8)
    parser.add_argument("--clicks", type=int, default=3)
    parser.add_argument("--setting", nargs="+", help="JSON objects to screen instead of the built-in list, "
                                                    "e.g. '{\"graphcut\": {\"weight\": 1.0}}' (\"none\" is always added)")
    parser.add_argument("--checkpoint", help="default: the bundled model")
    args = parser.parse_args()
    settings = [{"none": True}, *map(json.loads, args.setting)] if args.setting else SETTINGS
    samples = screening_samples(args.coco, args.bsds, args.every)
    predictor = Predictor.from_checkpoint(args.checkpoint)  # edge refinement and the band cut's image terms on
    ious = {json.dumps(s): np.zeros((len(samples), args.clicks)) for s in settings}
    seconds = {key: 0.0 for key in ious}
    start = time.perf_counter()
    for i, sample in enumerate(samples):
        image, gt = sample.load_image(), sample.gt
        state = predictor.set_image(image)
        clicks = [first_click(gt, sample.ignore)]
        for k in range(args.clicks):
            work_clicks = [state.frame.to_work(c) for c in clicks]
            prob = predictor._work_network_probability(state, work_clicks)
            edge_mask = None
            for setting in settings:
                key = json.dumps(setting)
                t = time.perf_counter()
                out = state.frame.probability_to_original(refine(setting, state, prob, work_clicks))
                seconds[key] += time.perf_counter() - t
                mask = apply_sis(out >= 0.5, clicks, 8)
                ious[key][i, k] = iou(mask, gt, sample.ignore)
                if "none" in setting:
                    edge_mask = mask
            nxt = next_click(edge_mask, gt, sample.ignore, clicked=clicks)
            if nxt is None:
                ious_rest = k + 1
                for key in ious:
                    ious[key][i, ious_rest:] = ious[key][i, k]
                break
            clicks.append(nxt)
        print(f"{i + 1}/{len(samples)} {time.perf_counter() - start:.0f}s", file=sys.stderr, flush=True)
    for key, table in ious.items():
        print(json.dumps({"setting": json.loads(key), "samples": len(samples),
                          "miou": [round(float(v), 4) for v in table.mean(axis=0)],
                          "refine_ms_per_click": round(1000 * seconds[key] / max(1, table.size), 1)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
