"""One-click IoU of the network alone at several working short sides, flipped, and averaged, on
training images (every 8th COCO_MVal object, about 100 BSDS500 segments): the test-time-augmentation
screening quoted in the model card ("What would close the gap", item 3).

    python scripts/experiments/first_click_scales.py   # from the repository root

A one-off experiment, kept so its figures can be rerun.
"""
import sys
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from model import Predictor
from model.evaluation.datasets import load_dataset
from model.training.sources.bsds500 import Bsds500Source
from model.robot_user import first_click, iou
samples = []
for s in load_dataset('coco_mval', '../shared/datasets/COCO_MVal')[::8]:
    samples.append(('coco', s.load_image, lambda s=s: s.gt))
src = Bsds500Source('../shared/datasets/BSDS500')
for i in range(0, len(src), max(1, len(src) // 100)):
    o = src[i]; samples.append(('bsds', o.load_image, o.load_mask))
net = Predictor.from_checkpoint(None, edge_refine=False, graphcut_refine=False)
rows = []
for srcn, li, lm in samples:
    img = li(); gt = lm(); c = first_click(gt, None)
    P = {s: net._network_probability(img, [c], s) for s in (256, 320, 384, 512, 640)}
    flip = net._network_probability(np.ascontiguousarray(img[:, ::-1]), [type(c)(img.shape[1] - 1 - c.x, c.y, True)], 512)[:, ::-1]
    r = {'src': srcn, 'frac': float(gt.mean())}
    for s, p in P.items(): r[f'ss{s}'] = iou(p >= .5, gt)
    r['flip512'] = iou((P[512] + flip) / 2 >= .5, gt)
    r['avg384+512'] = iou((P[384] + P[512]) / 2 >= .5, gt)
    r['avg320+512'] = iou((P[320] + P[512]) / 2 >= .5, gt)
    r['max320,512'] = iou(np.maximum(P[320], P[512]) >= .5, gt)
    r['avg256-512'] = iou((P[256] + P[320] + P[384] + P[512]) / 4 >= .5, gt)
    rows.append(r)
keys = [k for k in rows[0] if k not in ('src', 'frac')]
for sub in ('coco', 'bsds'):
    for lo, hi in ((0, 1), (0, 0.1), (0.1, 1)):
        rr = [r for r in rows if r['src'] == sub and lo <= r['frac'] < hi]
        print(sub, lo, hi, len(rr), {k: round(float(np.mean([r[k] for r in rr])), 3) for k in keys})
