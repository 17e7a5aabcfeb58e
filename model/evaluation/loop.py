"""The robot-user evaluation loop (NoC@85/90, mIoU per click, seconds per click).

Any object with `predict(image, clicks, sis=...) -> Prediction` can be evaluated: the
FCA-Net predictor, the GrabCut baseline, or test oracles.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np

from ..robot_user import first_click, iou, next_click
from .datasets import Sample

THRESHOLDS = (85, 90)


class ClickPredictor(Protocol):
    def predict(self, image, clicks, *, sis: bool = True): ...


@dataclass
class SampleResult:
    """ious: one per click 1..max_clicks; clicks: the robot's ordered clicks (empty when the
    result was read back from a journal, which keeps only scores)."""

    name: str
    ious: list[float]
    noc: dict[str, int]
    clicks: list = field(default_factory=list)


@dataclass
class EvaluationResult:
    """noc / over_max keyed "85", "90"; miou_per_click has one value per click 1..max_clicks."""

    max_clicks: int
    samples: list[SampleResult] = field(default_factory=list)
    seconds_per_click: float = 0.0

    @property
    def noc(self) -> dict[str, float]:
        return {str(t): float(np.mean([s.noc[str(t)] for s in self.samples])) for t in THRESHOLDS}

    @property
    def over_max(self) -> dict[str, int]:
        """How many samples never reach the threshold within max_clicks."""
        return {str(t): int(sum(1 for s in self.samples if max(s.ious) < t / 100)) for t in THRESHOLDS}

    @property
    def miou_per_click(self) -> list[float]:
        return [float(v) for v in np.mean([s.ious for s in self.samples], axis=0)]


def number_of_clicks(ious: Sequence[float], threshold: float, max_clicks: int) -> int:
    """The first click count whose IoU reaches threshold; max_clicks when none does."""
    for k, v in enumerate(ious, start=1):
        if v >= threshold:
            return k
    return max_clicks


def evaluate_sample(predictor: ClickPredictor, sample: Sample, max_clicks: int, sis: bool,
                    early_stop: bool = False) -> tuple[SampleResult, int, float]:
    """(result, predictions made, seconds spent predicting) for one sample.

    early_stop: stop once IoU >= 0.90 and carry that IoU forward (saves time; NoC is the same).
    """
    image = sample.load_image()
    clicks = [first_click(sample.gt, sample.ignore)]
    ious: list[float] = []
    seconds, calls = 0.0, 0
    while True:
        t = time.perf_counter()
        mask = predictor.predict(image, clicks, sis=sis).mask
        seconds += time.perf_counter() - t
        calls += 1
        ious.append(iou(mask, sample.gt, sample.ignore))
        if len(ious) >= max_clicks or (early_stop and ious[-1] >= 0.9):
            break
        nxt = next_click(mask, sample.gt, sample.ignore, clicked=clicks)
        if nxt is None:  # nothing left to fix: the rest of the clicks change nothing
            break
        clicks.append(nxt)
    ious += [ious[-1]] * (max_clicks - len(ious))
    noc = {str(t): number_of_clicks(ious, t / 100, max_clicks) for t in THRESHOLDS}
    return SampleResult(sample.name, ious, noc, clicks), calls, seconds


def evaluate_samples(predictor: ClickPredictor, samples: Sequence[Sample], max_clicks: int = 20, sis: bool = True,
                     progress: bool = True, early_stop: bool = False, desc: str = "evaluate",
                     journal=None) -> EvaluationResult:
    """journal: an `EvaluationJournal`; samples it already holds are taken from it, new ones added."""
    from tqdm import tqdm

    result = EvaluationResult(max_clicks=max_clicks)
    total_seconds, total_calls = 0.0, 0
    for sample in tqdm(samples, desc=desc, disable=not progress, dynamic_ncols=True):
        if journal is not None and sample.name in journal.done:
            ious, noc, calls, seconds = journal.done[sample.name]
            res = SampleResult(sample.name, list(ious), dict(noc))
        else:
            res, calls, seconds = evaluate_sample(predictor, sample, max_clicks, sis, early_stop)
            if journal is not None:
                journal.record(sample.name, res.ious, res.noc, calls, seconds)
        result.samples.append(res)
        total_seconds += seconds
        total_calls += calls
    result.seconds_per_click = total_seconds / max(1, total_calls)
    return result
