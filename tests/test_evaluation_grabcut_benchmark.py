import numpy as np

from model import Click, Predictor
from model.evaluation.benchmark import run_benchmark
from model.evaluation.grabcut_baseline import GrabCutPredictor


def test_grabcut_finds_an_obvious_object():
    img = np.full((80, 100, 3), 220, np.uint8)
    img[20:60, 30:70] = (30, 40, 160)
    gt = np.zeros((80, 100), bool)
    gt[20:60, 30:70] = True
    pred = GrabCutPredictor().predict(img, [Click(50, 40)])
    iou = (pred.mask & gt).sum() / (pred.mask | gt).sum()
    assert iou > 0.8
    neg = GrabCutPredictor().predict(img, [Click(50, 40), Click(35, 25, False)])
    assert not neg.mask[25, 35]


def test_benchmark_reports_latency_and_memory():
    result = run_benchmark(Predictor.for_tests(), clicks=2, runs=1, width=64, height=48, warmup=1, progress=False)
    assert result["calls"] == 2 and result["p95_ms"] >= result["p50_ms"] > 0
    assert result["peak_rss_mb"] > 0 and result["threads"] >= 1 and result["input"] == "64x48"
