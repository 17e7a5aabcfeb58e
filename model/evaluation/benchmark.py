"""Per-click latency of the whole predict call on a photo-like input, for one predictor or for
several output modes side by side.

Side by side means interleaved: each run clicks the same robot-user sequence through every mode in
turn, so that a noisy, shared machine slows all of them alike and the ratios stay meaningful. Each
run starts with the predictor's per-image state cache emptied, so its first click pays for
`set_image` as a labeler's first click on a new image does; the others reuse it.
"""

from __future__ import annotations

import resource
import time
from typing import Any, Mapping

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


def _click_run(predictor, image: np.ndarray, gt: np.ndarray, clicks: int) -> list[float]:
    """Seconds of each predict call along one robot-user click sequence, the first on a cold state."""
    from ..robot_user import first_click, next_click

    states = getattr(predictor, "image_states", None)
    if states is not None:
        states.clear()
    seq = [first_click(gt)]
    times = []
    for _k in range(clicks):
        t = time.perf_counter()
        mask = predictor.predict(image, seq).mask
        times.append(time.perf_counter() - t)
        nxt = next_click(mask, gt, clicked=seq)
        seq.append(nxt if nxt is not None else seq[-1])
    return times


def latency_summary(seconds: list[float]) -> dict[str, float]:
    """{"requests", "p50_ms", "p95_ms", "mean_ms", "max_ms"} of durations in seconds ({"requests": 0}
    when there are none): the one place every benchmark, here and in scripts/, reduces latencies."""
    if not len(seconds):
        return {"requests": 0}
    ms = np.asarray(seconds, dtype=float) * 1000
    return {"requests": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1), "mean_ms": round(float(ms.mean()), 1),
            "max_ms": round(float(ms.max()), 1)}


def _stats(times: list[float]) -> dict[str, float]:
    s = latency_summary(times)
    return {"p50_ms": s["p50_ms"], "p95_ms": s["p95_ms"], "mean_ms": s["mean_ms"], "calls": s["requests"]}


def run_modes(predictors: Mapping[str, Any], clicks: int = 10, runs: int = 3, width: int = 640, height: int = 480,
              warmup: int = 1, progress: bool = True) -> dict[str, Any]:
    """{"modes": {name: {p50_ms, p95_ms, mean_ms, calls, first_click_ms, p50_ratio, ...}}, ...}:
    every predictor timed on the same click sequences, interleaved run by run. p50_ratio and
    p95_ratio are against the first mode given."""
    import torch
    from tqdm import tqdm

    from .report import machine_info

    image, gt = photo_like(width, height)
    names = list(predictors)
    for name in names:
        for _ in range(warmup):
            _click_run(predictors[name], image, gt, 2)
    times: dict[str, list[float]] = {name: [] for name in names}
    first: dict[str, list[float]] = {name: [] for name in names}
    for _ in tqdm(range(runs), desc="benchmark", disable=not progress):
        for name in names:
            run = _click_run(predictors[name], image, gt, clicks)
            times[name].extend(run)
            first[name].append(run[0])
    modes = {}
    for name in names:
        modes[name] = {**_stats(times[name]),
                       "first_click_ms": round(float(np.median(first[name])) * 1000, 1),
                       "options": _options(predictors[name])}
    base = modes[names[0]]
    for name in names:
        modes[name]["p50_ratio"] = round(modes[name]["p50_ms"] / base["p50_ms"], 2)
        modes[name]["p95_ratio"] = round(modes[name]["p95_ms"] / base["p95_ms"], 2)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    any_predictor = predictors[names[0]]
    return {"modes": modes, "baseline": names[0], "clicks": clicks, "runs": runs, "input": f"{width}x{height}",
            "short_side": getattr(any_predictor, "short_side", None), "peak_rss_mb": round(peak_kb / 1024, 1),
            "threads": torch.get_num_threads(), "machine": machine_info()}


def _options(predictor) -> dict[str, Any]:
    metadata = getattr(predictor, "metadata", {})
    return {key: metadata.get(key) for key in ("edge_refine", "band_cut", "graphcut_refine", "zoom_in", "precision")}


def modes_table(result: Mapping[str, Any]) -> str:
    """The Markdown table of a `run_modes` result."""
    base = result["baseline"]
    lines = [f"| mode | p50 ms | p95 ms | mean ms | first click ms | p50 / {base} | p95 / {base} |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, m in result["modes"].items():
        lines.append(f"| {name} | {m['p50_ms']:.0f} | {m['p95_ms']:.0f} | {m['mean_ms']:.0f} | "
                     f"{m['first_click_ms']:.0f} | {m['p50_ratio']:.2f} | {m['p95_ratio']:.2f} |")
    lines.append(f"\n{result['runs']} runs x {result['clicks']} clicks a mode, interleaved; {result['input']} photo, "
                 f"short side {result['short_side']}, {result['threads']} torch thread(s), "
                 f"{result['machine'].get('cpu')} ({result['machine'].get('cores')} cores).")
    return "\n".join(lines)


def run_benchmark(predictor, clicks: int = 10, runs: int = 3, width: int = 640, height: int = 480,
                  warmup: int = 2, progress: bool = True) -> dict[str, Any]:
    """One predictor: p50/p95/mean per click (each run's first click on a cold per-image state)."""
    import torch
    from tqdm import tqdm

    from .report import machine_info

    image, gt = photo_like(width, height)
    for _ in range(warmup):
        _click_run(predictor, image, gt, 1)
    times: list[float] = []
    for _ in tqdm(range(runs), desc="benchmark", disable=not progress):
        times.extend(_click_run(predictor, image, gt, clicks))
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        **_stats(times), "input": f"{width}x{height}",
        "short_side": getattr(predictor, "short_side", None), "peak_rss_mb": round(peak_kb / 1024, 1),
        "threads": torch.get_num_threads(), "model": getattr(predictor, "metadata", {}), "machine": machine_info(),
    }
