"""A classical baseline in the same harness: OpenCV's GrabCut seeded from the robot's clicks.

Seeds: everything probable background; a generous box around the positive clicks (padded
by a share of the image) probable foreground; sure-foreground disks at positive clicks and
sure-background disks at negative clicks. Images are processed at most 320 pixels on the long side (3 iterations)
and the mask is scaled back, which keeps a click under a second.
"""

from __future__ import annotations

import time
from typing import Sequence

import cv2
import numpy as np

from ..clicks import Click, validate_clicks
from ..graphcut_refine import seed_click_disks
from ..image_io import load_image
from ..prediction import Prediction
from ..sis import apply_sis


class GrabCutPredictor:
    model_version = "opencv-grabcut"

    def __init__(self, iterations: int = 3, disk_radius: int = 5, max_side: int = 320, box_margin: float = 0.15):
        self.iterations, self.disk_radius = iterations, disk_radius
        self.max_side, self.box_margin = max_side, box_margin
        self.metadata = {"version": self.model_version, "method": "grabcut", "iterations": iterations,
                         "disk_radius": disk_radius, "max_side": max_side}

    def seeds(self, height: int, width: int, clicks: Sequence[Click], scale: float) -> np.ndarray:
        seeds = np.full((height, width), cv2.GC_PR_BGD, np.uint8)
        pos = [c for c in clicks if c.positive]
        xs = [c.x * scale for c in pos]
        ys = [c.y * scale for c in pos]
        mx, my = self.box_margin * width, self.box_margin * height
        x0, x1 = int(max(0, min(xs) - mx)), int(min(width - 1, max(xs) + mx))
        y0, y1 = int(max(0, min(ys) - my)), int(min(height - 1, max(ys) + my))
        seeds[y0:y1 + 1, x0:x1 + 1] = cv2.GC_PR_FGD
        return seed_click_disks(seeds, clicks, self.disk_radius, scale)

    def predict(self, image, clicks, *, sis: bool = True) -> Prediction:
        start = time.perf_counter()
        rgb = load_image(image)
        h, w = rgb.shape[:2]
        clicks = validate_clicks(clicks, w, h)
        scale = min(1.0, self.max_side / max(h, w))
        small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA) \
            if scale < 1 else rgb
        sh, sw = small.shape[:2]
        seeds = self.seeds(sh, sw, clicks, scale)
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        # GrabCut's k-means starts from OpenCV's random generator: seeded, the same clicks give the
        # same mask in every run, so two runs of the benchmark compare (as in graphcut_refine).
        cv2.setRNGSeed(0)
        try:
            cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), seeds, None, bgd, fgd, self.iterations,
                        cv2.GC_INIT_WITH_MASK)
        except cv2.error:
            pass  # degenerate seeds (e.g. no background left): keep the seeds as the answer
        fg = np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.float32)
        prob = cv2.resize(fg, (w, h), interpolation=cv2.INTER_LINEAR) if scale < 1 else fg
        mask = prob >= 0.5
        if sis:
            mask = apply_sis(mask, clicks)
        return Prediction(mask=mask, probability=prob.astype(np.float32), model_version=self.model_version,
                          seconds=time.perf_counter() - start)
