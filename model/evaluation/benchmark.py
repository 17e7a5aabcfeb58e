"""Per-click latency of the whole predict call on a photo-like input."""

from __future__ import annotations

import resource
import time
from typing import Any

import numpy as np


def photo_like(width: int = 640, height: int = 480) -> tuple[np.ndarray, np.ndarray]:
    """A real photograph shipped with scikit-image (the astronaut), resized to (height, width),
    and a synthetic object mask for the robot to click on."""
    import cv2
    from skimage import data

    img = cv2.resize(data.astronaut(), (width, height), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[:height, :width]
    mask = ((yy - height * 0.45) / (height * 0.3)) ** 2 + ((xx - width * 0.5) / (width * 0.2)) ** 2 <= 1
    return img, mask


def run_benchmark(predictor, clicks: int = 10, runs: int = 3, width: int = 640, height: int = 480,
                  warmup: int = 2, progress: bool = True) -> dict[str, Any]:
    import torch
    from tqdm import tqdm

    from ..robot_user import first_click, next_click
    from .report import machine_info

    image, gt = photo_like(width, height)
    seq = [first_click(gt)]
    for _ in range(warmup):
        predictor.predict(image, seq)
    times: list[float] = []
    for _ in tqdm(range(runs), desc="benchmark", disable=not progress):
        seq = [first_click(gt)]
        for _k in range(clicks):
            t = time.perf_counter()
            mask = predictor.predict(image, seq).mask
            times.append(time.perf_counter() - t)
            nxt = next_click(mask, gt, clicked=seq)
            if nxt is None:
                nxt = seq[-1]
            seq.append(nxt)
    ms = np.array(times) * 1000
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "mean_ms": round(float(ms.mean()), 1), "calls": len(times), "input": f"{width}x{height}",
        "short_side": getattr(predictor, "short_side", None), "peak_rss_mb": round(peak_kb / 1024, 1),
        "threads": torch.get_num_threads(), "model": getattr(predictor, "metadata", {}), "machine": machine_info(),
    }
