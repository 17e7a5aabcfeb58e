import numpy as np
import pytest

from model.checkpoint import CheckpointMetadata, save_checkpoint
from model.evaluation.datasets import Sample
from model.evaluation.loop import evaluate_samples
from model.evaluation.scoring import robot_clicks, score_checkpoint, summarize
from model.config import preset
from model.network.fcanet import FCANet
from model.predictor import Predictor
from model.predictor_flags import OUTPUT_MODES


def _samples(n=2):
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        gt = np.zeros((40, 56), bool)
        gt[8 + i:30, 10:40 - i] = True
        img = (rng.random((40, 56, 3)) * 60).astype(np.uint8)
        img[gt] += 150
        out.append(Sample(f"s{i}", lambda img=img: img, gt))
    return out


@pytest.fixture()
def checkpoint(tmp_path):
    net = FCANet(preset("tiny"))
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(path, net, CheckpointMetadata(network=net.config, version="tiny-0", short_side=48))
    return str(path)


@pytest.mark.parametrize("output", ["network", "default"])
def test_score_checkpoint_is_the_robot_user_on_that_output(checkpoint, output):
    samples = _samples()
    options = {} if output == "default" else OUTPUT_MODES[output]
    direct = evaluate_samples(Predictor.from_checkpoint(checkpoint, **options), samples, max_clicks=5,
                              sis=True, early_stop=True, progress=False)
    scored = score_checkpoint(checkpoint, samples, 5, output=output)
    assert scored == summarize(direct)
    assert scored["samples"] == 2 and len(scored["miou_per_click"]) == 5
    assert 1 <= scored["noc85"] <= scored["noc90"] <= 5


def test_score_checkpoint_names_an_unknown_output(checkpoint):
    with pytest.raises(ValueError, match="unknown output 'fancy'"):
        score_checkpoint(checkpoint, _samples(1), 3, output="fancy")


def test_robot_clicks_start_at_a_positive_anchor_inside_the_object(checkpoint):
    sample = _samples(1)[0]
    clicks = robot_clicks(Predictor.from_checkpoint(checkpoint), sample, 4)
    assert 1 <= len(clicks) <= 4
    assert clicks[0].positive and sample.gt[int(clicks[0].y), int(clicks[0].x)]
