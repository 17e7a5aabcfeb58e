"""One-click IoU of first-click GrabCut fusions on training images (every 8th COCO_MVal object, about
100 BSDS500 segments): the screening quoted in the model card ("What would close the gap", item 3).

    python scripts/experiments/first_click_grabcut.py both   # or coco / bsds; run from the repository root

Variants: the network alone, the default output, OpenCV GrabCut from the baseline's box (0.15 of the
image around the click), blends, GrabCut from the network mask's widened box, and GrabCut from the union
of the baseline box and the network's mask. Prints one JSON line per object, then means per source
(all objects and objects over 10 % of the image). A one-off experiment, kept so its figures can be rerun.
"""
import sys, json, time
from pathlib import Path
import numpy as np, cv2
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from model import Predictor
from model.clicks import Click, object_box
from model.evaluation.datasets import load_dataset
from model.training.sources.bsds500 import Bsds500Source
from model.robot_user import first_click, iou

def gc(img, seeds, iters):
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.setRNGSeed(0)
    s = seeds.copy()
    try:
        cv2.grabCut(cv2.cvtColor(img, cv2.COLOR_RGB2BGR), s, None, bgd, fgd, iters, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        pass
    return np.isin(s, (1, 3)).astype(np.float32)

def gc_box(img, click, box, pfg=None, max_side=320, iters=3, r=5):
    """GrabCut on the whole image at max_side: PR_FGD in box (and pfg), PR_BGD elsewhere."""
    h, w = img.shape[:2]
    sc = min(1.0, max_side / max(h, w))
    sw, sh = max(1, round(w * sc)), max(1, round(h * sc))
    small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
    seeds = np.full((sh, sw), cv2.GC_PR_BGD, np.uint8)
    x0, y0, x1, y1 = [int(round(v * sc)) for v in box]
    seeds[y0:y1, x0:x1] = cv2.GC_PR_FGD
    if pfg is not None:
        seeds[cv2.resize(pfg.astype(np.uint8), (sw, sh), interpolation=cv2.INTER_NEAREST) > 0] = cv2.GC_PR_FGD
    cv2.circle(seeds, (int(click.x * sc), int(click.y * sc)), r, cv2.GC_FGD, -1)
    g = gc(small, seeds, iters)
    return cv2.resize(g, (w, h), interpolation=cv2.INTER_LINEAR)

def clipbox(x0, y0, x1, y1, w, h):
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)

def main():
    which = sys.argv[1]
    samples = []
    if which in ('coco', 'both'):
        for s in load_dataset('coco_mval', '../shared/datasets/COCO_MVal')[::8]:
            samples.append(('coco', s.name, s.load_image, lambda s=s: s.gt))
    if which in ('bsds', 'both'):
        src = Bsds500Source('../shared/datasets/BSDS500')
        for i in range(0, len(src), max(1, len(src) // 100)):
            o = src[i]
            samples.append(('bsds', f'{o.image_id}', o.load_image, o.load_mask))
    net = Predictor.from_checkpoint(None, edge_refine=False, graphcut_refine=False)
    dflt = Predictor.from_checkpoint(None)
    rows = []
    t0 = time.time()
    for src, name, li, lm in samples:
        img = li(); gt = lm()
        h, w = gt.shape
        c = first_click(gt, None)
        pn = net.probability(img, [c]); pd = dflt.probability(img, [c])
        res = {'src': src, 'name': name, 'frac': float(gt.mean())}
        res['net'] = iou(pn >= .5, gt); res['default'] = iou(pd >= .5, gt)
        # paper baseline GrabCut box 0.15 image
        mx, my = 0.15 * w, 0.15 * h
        gb = gc_box(img, c, clipbox(int(c.x - mx), int(c.y - my), int(c.x + mx) + 1, int(c.y + my) + 1, w, h))
        res['gcbase'] = iou(gb >= .5, gt)
        for wgt in (0.5, 0.65):
            res[f'def+gcbase{wgt}'] = iou((1 - wgt) * pd + wgt * gb >= .5, gt)
        # box from the network's mask, widened by m on each side (share of its size)
        mb = object_box(pd >= .5, [c])
        for m in (0.5, 1.0):
            if mb is None:
                res[f'gcnet{m}'] = res['default']; continue
            x0, y0, x1, y1 = mb
            bw, bh = x1 - x0, y1 - y0
            g = gc_box(img, c, clipbox(int(x0 - m * bw), int(y0 - m * bh), int(x1 + m * bw), int(y1 + m * bh), w, h))
            res[f'gcnet{m}'] = iou(g >= .5, gt)
            res[f'def+gcnet{m}_0.5'] = iou(0.5 * pd + 0.5 * g >= .5, gt)
        # union of baseline box and network mask as PR_FGD
        gu = gc_box(img, c, clipbox(int(c.x - mx), int(c.y - my), int(c.x + mx) + 1, int(c.y + my) + 1, w, h), pfg=pd >= .5)
        res['gcunion'] = iou(gu >= .5, gt)
        res['def+gcunion0.5'] = iou(0.5 * pd + 0.5 * gu >= .5, gt)
        rows.append(res)
        print(json.dumps(res), flush=True)
    keys = [k for k in rows[0] if k not in ('src', 'name', 'frac')]
    for sub in ('coco', 'bsds'):
        rr = [r for r in rows if r['src'] == sub]
        if not rr: continue
        print(sub, len(rr), {k: round(float(np.mean([r[k] for r in rr])), 3) for k in keys})
        big = [r for r in rr if r['frac'] > 0.1]
        print(sub, 'frac>0.1', len(big), {k: round(float(np.mean([r[k] for r in big])), 3) for k in keys})
    print('seconds', time.time() - t0)
main()
