import json

import numpy as np

from dataset_fixtures import write_tiny_davis
from model.evaluation.datasets import Sample
from model.evaluation.loop import evaluate_samples, number_of_clicks
from model.prediction import Prediction


def _samples(n=3):
    out = []
    for i in range(n):
        gt = np.zeros((30, 40), bool)
        gt[5 + i:20 + i, 8:30] = True
        img = np.zeros((30, 40, 3), np.uint8)
        out.append(Sample(f"s{i}", lambda img=img: img, gt))
    return out


class Empty:
    def predict(self, image, clicks, *, sis=True):
        h, w = image.shape[:2]
        return Prediction(np.zeros((h, w), bool), np.zeros((h, w), np.float32), "empty")


def test_oracle_scores_one_click_everywhere():
    samples = _samples()

    class GtOracle:
        def __init__(self):
            self.k = -1
            self.last = None

        def predict(self, image, clicks, *, sis=True):
            if len(clicks) == 1:
                self.k += 1
            gt = samples[self.k].gt
            return Prediction(gt, gt.astype(np.float32), "oracle")

    r = evaluate_samples(GtOracle(), samples, max_clicks=20, progress=False)
    assert r.noc == {"85": 1.0, "90": 1.0} and r.over_max == {"85": 0, "90": 0}
    assert r.miou_per_click == [1.0] * 20


def test_empty_predictor_scores_max_clicks():
    samples = _samples()
    samples_gt = samples[0].gt
    r = evaluate_samples(Empty(), samples, max_clicks=7, progress=False)
    assert r.noc == {"85": 7.0, "90": 7.0} and r.over_max["90"] == 3
    assert len(r.miou_per_click) == 7 and max(r.miou_per_click) == 0.0
    assert r.seconds_per_click >= 0
    # The robot's clicks are kept in order: the first positive and central, the rest on errors
    # (an empty mask leaves only missed object pixels to click).
    clicks = r.samples[0].clicks
    assert len(clicks) == 7 and clicks[0].positive and all(c.positive for c in clicks)
    assert len({(c.x, c.y) for c in clicks}) == 7
    assert all(samples_gt[int(c.y), int(c.x)] for c in clicks)


def test_number_of_clicks():
    assert number_of_clicks([0.5, 0.86, 0.95], 0.85, 20) == 2
    assert number_of_clicks([0.5, 0.86, 0.89], 0.90, 20) == 20


def test_cli_writes_all_outputs(tmp_path):
    from model.cli import main

    root = write_tiny_davis(tmp_path / "davis")
    out = tmp_path / "out"
    assert main(["evaluate", "--method", "grabcut", "--dataset", "davis", "--data-dir", str(root),
                 "--max-clicks", "3", "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    for key in ("dataset", "method", "checkpoint", "samples", "max_clicks", "sis", "noc", "over_max",
                "miou_per_click", "seconds_per_click"):
        assert key in m
    assert m["samples"] == 2 and len(m["miou_per_click"]) == 3 and set(m["noc"]) == {"85", "90"}
    assert (out / "samples.csv").read_text().count("\n") == 3
    assert "| grabcut + SIS |" in (out / "report.md").read_text()
    assert (out / "miou_curve.png").stat().st_size > 1000
    assert main(["plot", str(out), str(out), "--out", str(tmp_path / "c.png")]) == 0


def test_journal_resumes_a_stopped_run_and_refuses_another(tmp_path):
    import pytest

    from model.errors import FcanetInputError
    from model.evaluation.journal import EvaluationJournal

    class Counting(Empty):
        calls = 0

        def predict(self, image, clicks, *, sis=True):
            Counting.calls += 1
            return super().predict(image, clicks, sis=sis)

    identity = {"dataset": "x", "max_clicks": 4}
    path = tmp_path / "progress.jsonl"
    full = evaluate_samples(Counting(), _samples(), max_clicks=4, progress=False,
                            journal=EvaluationJournal(path, identity, resume=False))
    assert Counting.calls == 12
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:10])  # killed while writing the last sample
    Counting.calls = 0
    resumed = evaluate_samples(Counting(), _samples(), max_clicks=4, progress=False,
                               journal=EvaluationJournal(path, identity, resume=True))
    assert Counting.calls == 4  # only the unfinished sample ran again
    assert [s.ious for s in resumed.samples] == [s.ious for s in full.samples] and resumed.noc == full.noc
    assert len(EvaluationJournal(path, identity, resume=True).done) == 3  # the re-run sample was kept
    with pytest.raises(FcanetInputError, match="another evaluation"):
        EvaluationJournal(path, {**identity, "max_clicks": 5}, resume=True)
    EvaluationJournal(path, {**identity, "max_clicks": 5}, resume=False)  # without --resume: a fresh journal
    assert len(path.read_text().splitlines()) == 1


def test_a_report_title_names_every_step_that_produced_its_figures():
    from model.evaluation.report import method_name

    metrics = {"method": "fcanet", "sis": True,
               "model": {"grid_align": True, "edge_refine": {"radius": 16}, "band_cut": {"rounds": 4},
                         "graphcut_refine": False, "zoom_in": False}}
    assert method_name(metrics) == "fcanet + grid-align + edge refinement + band cut + SIS"
    metrics["model"] = {"edge_refine": False, "band_cut": False, "graphcut_refine": False}
    assert method_name({**metrics, "sis": False}) == "fcanet"
    metrics["model"]["precision"] = "bf16"
    assert method_name(metrics) == "fcanet + SIS (bf16)"
    metrics["model"]["precision"] = "fp32"
    assert method_name(metrics) == "fcanet + SIS"
