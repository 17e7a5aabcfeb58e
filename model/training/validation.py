"""Held-out validation during training: the evaluation harness's NoC on a few objects."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def robot_noc(predictor, samples: Sequence[tuple[np.ndarray, np.ndarray]], max_clicks: int = 10,
              sis: bool = True) -> dict[str, Any]:
    """NoC@85/90 (max_clicks when never reached) and mIoU per click over (image, gt) pairs."""
    from ..evaluation.datasets import Sample
    from ..evaluation.loop import evaluate_samples

    wrapped = [Sample(f"val{i}", (lambda im=image: im), gt) for i, (image, gt) in enumerate(samples)]
    result = evaluate_samples(predictor, wrapped, max_clicks=max_clicks, sis=sis, progress=False, early_stop=True)
    return {"noc85": result.noc["85"], "noc90": result.noc["90"], "samples": len(samples),
            "max_clicks": max_clicks, "miou_per_click": [round(v, 4) for v in result.miou_per_click]}
