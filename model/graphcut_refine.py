"""Colour-model refinement of the probability map: GrabCut (Rother et al., SIGGRAPH 2004) seeded by
the network.

Not in the paper; on by default (`Predictor(graphcut_refine=False)`, `--no-graphcut-refine` turn it off;
with edge refinement off too the output is the paper's).
Our light network, trained on CPUs, gets an object's rough place and extent right but not its
colours: its one-click masks are blobs around the click, and OpenCV's GrabCut seeded only by the
clicks beats it on the GrabCut benchmark. This step hands the network's answer to GrabCut as its
starting labelling, so that colour models of object and background (a Gaussian mixture each)
and a graph cut along colour edges decide the pixels the network is unsure of:

- the region: the box around the network's mask and the positive clicks, widened by `margin`
  (a share of the box's size; at least `min_margin` of the image's short side) on every side;
  outside it the probability stays as it was;
- inside it, at most `max_side` pixels on the long side: probable foreground where the
  probability is at least 0.5, probable background elsewhere, sure foreground / background
  disks (`disk_radius`) at the positive / negative clicks, and a sure-background frame
  on the region's border wherever the box did not reach the image's edge;
- `iterations` rounds of GrabCut; then (`full_resolution`, the default) one more cut of the region
  at its own (working) size with the colour models just learnt held fixed (OpenCV's
  GC_EVAL_FREEZE_MODEL), so that the boundary is the image's, not that of the shrunk region: the
  models are cheap to learn small (k-means is most of GrabCut's cost), the boundary and thin parts
  are not. That cut costs about 1 s on a 640x480 photo; `cut_side` caps its size. It has to cover the
  whole region: opening only the pixels near the shrunk cut's boundary costs 30 ms but lost the whole
  gain on BSDS500 (model card), since the full-size cut also finds thin parts and holes far from it;
- its binary answer g is blended with the network's p as
  (1 - weight) * p + weight * g, so with weight below 0.5 a confident network keeps its pixels
  (at the default 0.35 GrabCut decides where 0.23 < p < 0.77).

Arrays: image (H, W, 3) uint8 and probability (H, W) float32 of one size (the Predictor passes the
working image); clicks in pixels of those arrays; the result has the probability's shape.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .clicks import Click, object_box
from .preprocess import WorkingFrame
from .refine_config import GraphCutRefineConfig


def refine_region(mask: np.ndarray, clicks: Sequence[Click], margin: float,
                  min_margin: float = 0.0) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), x1 and y1 exclusive: the box around the mask and the positive clicks,
    widened on each side by `margin` of its size but at least `min_margin` of the array's short
    side, and clipped to the array; None for an empty mask."""
    tight = object_box(mask, clicks)
    if tight is None:
        return None
    height, width = mask.shape
    x0, y0, x1, y1 = tight
    floor = min_margin * min(height, width)
    mx, my = round(max(margin * (x1 - x0), floor)), round(max(margin * (y1 - y0), floor))
    return max(0, x0 - mx), max(0, y0 - my), min(width, x1 + mx), min(height, y1 + my)


def _seeds(prob: np.ndarray, clicks: Sequence[Click], frame: tuple[bool, bool, bool, bool], disk_radius: int) -> np.ndarray:
    """GrabCut's starting labels for the (h, w) region; clicks in the region's pixels;
    frame: (left, top, right, bottom) sides that get a sure-background border."""
    return _sure_labels(np.where(prob >= 0.5, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8), clicks, frame,
                        disk_radius)


def _sure_labels(seeds: np.ndarray, clicks: Sequence[Click], frame: tuple[bool, bool, bool, bool],
                 disk_radius: int) -> np.ndarray:
    """`seeds` with sure background on the framed sides and sure disks at the clicks."""
    left, top, right, bottom = frame
    if left:
        seeds[:, 0] = cv2.GC_BGD
    if top:
        seeds[0, :] = cv2.GC_BGD
    if right:
        seeds[:, -1] = cv2.GC_BGD
    if bottom:
        seeds[-1, :] = cv2.GC_BGD
    return seed_click_disks(seeds, clicks, disk_radius)


def seed_click_disks(seeds: np.ndarray, clicks: Sequence[Click], disk_radius: int, scale: float = 1.0) -> np.ndarray:
    """`seeds` (GrabCut labels, (h, w) uint8) with a sure-object disk at each positive click and a
    sure-background disk at each negative one; clicks (x, y) times `scale` are pixels of `seeds`."""
    for c in clicks:
        value = cv2.GC_FGD if c.positive else cv2.GC_BGD
        cv2.circle(seeds, (int(round(c.x * scale)), int(round(c.y * scale))), disk_radius, int(value), -1)
    return seeds


def _cut_with_frozen_models(image: np.ndarray, clicks: Sequence[Click], frame: tuple[bool, bool, bool, bool],
                            disk_radius: int, bgd: np.ndarray, fgd: np.ndarray) -> np.ndarray | None:
    """(h, w) float32 0/1: one graph cut of the (h, w, 3) region with the colour models learnt on the
    shrunk region held fixed; None when OpenCV refuses. With frozen models only the sure labels
    (click disks, frame) constrain the cut, so every other pixel starts as probable background."""
    seeds = _sure_labels(np.full(image.shape[:2], cv2.GC_PR_BGD, np.uint8), clicks, frame, disk_radius)
    try:
        cv2.grabCut(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR), seeds, None, bgd, fgd, 1,
                    cv2.GC_EVAL_FREEZE_MODEL)
    except cv2.error:
        return None
    return np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.float32)


def graphcut_refine(image: np.ndarray, probability: np.ndarray, clicks: Sequence[Click],
                    config: GraphCutRefineConfig = GraphCutRefineConfig()) -> np.ndarray:
    """(H, W) float32: `probability` with GrabCut's answer blended in around the object."""
    if image.shape[:2] != probability.shape:
        raise ValueError(f"image {image.shape[:2]} and probability {probability.shape} differ in size")
    height, width = probability.shape
    box = refine_region(probability >= 0.5, clicks, config.margin, config.min_margin)
    if box is None:
        return probability
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    scale = min(1.0, config.max_side / max(bw, bh))
    # The region's own resize, as the Predictor's: the same pixel-centre convention for the clicks.
    frame = WorkingFrame(bh, bw, max(1, round(bh * scale)), max(1, round(bw * scale)))
    if min(frame.work_height, frame.work_width) < 4:
        return probability
    crop_img = frame.resize_image(np.ascontiguousarray(image[y0:y1, x0:x1]))
    crop_p = frame.resize_image(probability[y0:y1, x0:x1])
    local = [frame.to_work(Click(c.x - x0, c.y - y0, c.positive)) for c in clicks]
    seeds = _seeds(crop_p, local, (x0 > 0, y0 > 0, x1 < width, y1 < height), config.disk_radius)
    fg_seed = np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD))
    if fg_seed.all() or not fg_seed.any():
        return probability  # GrabCut needs samples of both colour models
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    # GrabCut starts its colour models with k-means from OpenCV's random generator (one per thread):
    # seeding it here makes the same clicks give the same mask, call after call.
    cv2.setRNGSeed(0)
    try:
        cv2.grabCut(cv2.cvtColor(crop_img, cv2.COLOR_RGB2BGR), seeds, None, bgd, fgd, config.iterations,
                    cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return probability  # degenerate colour models (e.g. a flat region): keep the network's answer
    cut_fg = np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD))
    g = frame.probability_to_original(cut_fg.astype(np.float32))
    cut_scale = min(1.0, config.cut_side / max(bw, bh)) if config.cut_side else 1.0
    # An all-or-nothing shrunk cut has nothing to sharpen; keep it.
    if config.full_resolution and cut_scale > scale and cut_fg.any() and not cut_fg.all():
        cut = WorkingFrame(bh, bw, max(1, round(bh * cut_scale)), max(1, round(bw * cut_scale)))
        fine = _cut_with_frozen_models(
            cut.resize_image(np.ascontiguousarray(image[y0:y1, x0:x1])),
            [cut.to_work(Click(c.x - x0, c.y - y0, c.positive)) for c in clicks],
            (x0 > 0, y0 > 0, x1 < width, y1 < height), max(1, round(config.disk_radius * cut_scale / scale)), bgd, fgd)
        if fine is not None:
            g = cut.probability_to_original(fine)
    out = probability.astype(np.float32, copy=True)
    out[y0:y1, x0:x1] = (1.0 - config.weight) * out[y0:y1, x0:x1] + config.weight * g
    return out
