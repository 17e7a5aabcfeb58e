"""The bundle gate's second half: one central click on the e2e tests' ellipse at four working sizes.

    python scripts/ellipse_gate.py [--no-edge-refine] [--no-graphcut-refine] [CHECKPOINT ...]
Prints the IoU at a 320 / 384 / 448 / 512 short side for each checkpoint (default: the bundled
model) and whether the 512 figure reaches the e2e tests' TARGET_IOU. With both `--no-...` flags it
scores the network's own output, as every figure before edge refinement was measured. A checkpoint replaces the
bundle only if it passes here and wins the paired benchmark comparison (docs/training-history.md,
"How a bundle was chosen").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from e2e.scenes import TARGET_IOU, ellipse_scene  # noqa: E402
from model import Click, Predictor, default_checkpoint_path  # noqa: E402

SHORT_SIDES = (320, 384, 448, 512)


def ellipse_ious(checkpoint: str, edge_refine: bool = True, graphcut_refine: bool = True) -> dict[int, float]:
    """IoU of the mask from one click at the ellipse's most central pixel, per working short side."""
    image, truth = ellipse_scene()
    distance = ndimage.distance_transform_edt(truth)
    y, x = np.unravel_index(np.argmax(distance), distance.shape)
    click = Click(x=float(x), y=float(y), positive=True)
    ious = {}
    for short_side in SHORT_SIDES:
        # Without graph-cut refinement neither cut runs (the band cut is the default one).
        cuts = {} if graphcut_refine else {"graphcut_refine": False, "band_cut": False}
        predictor = Predictor.from_checkpoint(checkpoint, short_side=short_side, edge_refine=edge_refine, **cuts)
        mask = predictor.predict(image, [click]).mask
        ious[short_side] = float((mask & truth).sum() / (mask | truth).sum())
    return ious


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="*", default=[str(default_checkpoint_path())])
    parser.add_argument("--no-edge-refine", action="store_true",
                        help="no guided filter (the e2e tests use the predictor's default, refined)")
    parser.add_argument("--no-graphcut-refine", action="store_true", help="no graph-cut refinement (neither the band cut nor GrabCut)")
    args = parser.parse_args()
    failed = 0
    for checkpoint in args.checkpoints:
        ious = ellipse_ious(checkpoint, edge_refine=not args.no_edge_refine,
                           graphcut_refine=not args.no_graphcut_refine)
        passed = ious[512] >= TARGET_IOU
        failed += not passed
        figures = " / ".join(f"{ious[s]:.3f}" for s in SHORT_SIDES)
        print(f"{checkpoint}: {figures} at {'/'.join(map(str, SHORT_SIDES))}; "
              f"{'pass' if passed else 'FAIL'} (512 >= {TARGET_IOU})")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
