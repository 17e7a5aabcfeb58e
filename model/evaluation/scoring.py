"""Scoring a checkpoint file with the robot user, and the robot's clicks as a labeler's.

The learning-loop demonstrations and the training-data recipe all ask the same two questions
of a checkpoint: what NoC and mIoU per click does it give on these samples, with the network's
own output or with what a labeler sees (the default post-processing)? And which clicks would a
labeler have placed with it? One answer each, here.
"""

from __future__ import annotations

from typing import Sequence

from .datasets import Sample
from .loop import EvaluationResult, evaluate_sample, evaluate_samples


def summarize(result: EvaluationResult) -> dict:
    """The figures a report keeps: samples, NoC@85/90, how many never reach 90 %, mIoU per click."""
    return {"samples": len(result.samples), "noc85": result.noc["85"], "noc90": result.noc["90"],
            "over_max_90": result.over_max["90"], "miou_per_click": [round(v, 4) for v in result.miou_per_click]}


def score_checkpoint(checkpoint: str, samples: Sequence[Sample], max_clicks: int = 20, desc: str = "score", *,
                     output: str = "network", progress: bool = False) -> dict:
    """`summarize` of the robot user (SIS on, early stop at 90 %) on `samples`.

    output: a name of `model.predictor_flags.OUTPUT_MODES` ("network": the paper's output, what
    the fine-tuning gate scores), or "default": the predictor's defaults, what a labeler sees.
    """
    from ..predictor import Predictor
    from ..predictor_flags import OUTPUT_MODES

    if output != "default" and output not in OUTPUT_MODES:
        raise ValueError(f"unknown output {output!r}; known: default, {', '.join(OUTPUT_MODES)}")
    options = {} if output == "default" else OUTPUT_MODES[output]
    result = evaluate_samples(Predictor.from_checkpoint(checkpoint, **options), samples, max_clicks=max_clicks,
                              sis=True, early_stop=True, desc=desc, progress=progress)
    return summarize(result)


def robot_clicks(predictor, sample: Sample, max_clicks: int) -> list:
    """The robot user's ordered clicks with `predictor` until IoU 0.9 (or max_clicks): the clicks a
    labeler would submit with a correction of `sample`."""
    return evaluate_sample(predictor, sample, max_clicks, sis=True, early_stop=True)[0].clicks
