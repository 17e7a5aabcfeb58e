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


def test_benchmark_times_every_output_mode_side_by_side(tmp_path, capsys):
    import json

    from model.cli import main

    out = tmp_path / "bench.json"
    table = tmp_path / "bench.md"
    assert main(["benchmark", "--modes", "all", "--clicks", "2", "--runs", "1", "--short-side", "32",
                 "--json", str(out), "--markdown", str(table)]) == 0
    result = json.loads(out.read_text())
    assert list(result["modes"]) == ["network", "edge", "grabcut-fast", "grabcut", "default"]
    assert result["baseline"] == "network" and result["modes"]["network"]["p50_ratio"] == 1.0
    for name, mode in result["modes"].items():
        assert mode["calls"] == 2 and mode["p95_ms"] >= mode["p50_ms"] > 0 and mode["first_click_ms"] > 0
        assert mode["p50_ratio"] > 0
    # Each mode ran the predictor it names.
    options = {name: mode["options"] for name, mode in result["modes"].items()}
    assert options["network"]["edge_refine"] is False and options["network"]["band_cut"] is False
    assert options["edge"]["edge_refine"] and not options["edge"]["band_cut"]
    assert options["grabcut-fast"]["graphcut_refine"]["full_resolution"] is False
    assert options["grabcut"]["graphcut_refine"]["full_resolution"] is True and not options["grabcut"]["band_cut"]
    assert options["default"]["band_cut"] and not options["default"]["graphcut_refine"]
    printed = capsys.readouterr().out
    assert "| default |" in printed and "p50 / network" in printed and table.read_text().strip() in printed


def test_benchmark_times_each_mode_at_each_precision(tmp_path, capsys):
    import json

    from model.cli import main

    out = tmp_path / "bench.json"
    assert main(["benchmark", "--modes", "network,default", "--precisions", "fp32,bf16", "--clicks", "1", "--runs", "1",
                 "--short-side", "32", "--json", str(out)]) == 0
    modes = json.loads(out.read_text())["modes"]
    assert list(modes) == ["network fp32", "network bf16", "default fp32", "default bf16"]
    assert [m["options"]["precision"] for m in modes.values()] == ["fp32", "bf16", "fp32", "bf16"]
    assert main(["benchmark", "--modes", "network", "--precisions", "fp16", "--json", str(out)]) == 2
    assert "fp16" in capsys.readouterr().err


def test_benchmark_rejects_unknown_modes(tmp_path, capsys):
    from model.cli import main

    assert main(["benchmark", "--modes", "network,turbo", "--json", str(tmp_path / "b.json")]) == 2
    assert "turbo" in capsys.readouterr().err


def test_the_grabcut_baseline_gives_the_same_mask_whatever_opencv_s_random_state():
    import cv2

    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    image[30:70, 40:90] = (image[30:70, 40:90] // 2 + 100).astype(np.uint8)
    clicks = [Click(64, 50), Click(5, 5, False)]
    predictor = GrabCutPredictor()
    masks = []
    for seed in range(6):
        cv2.setRNGSeed(seed + 1)
        masks.append(predictor.predict(image, clicks).mask)
    assert all(np.array_equal(masks[0], m) for m in masks[1:])
