import threading

import numpy as np
import pytest
import torch

from model import Click, ClickError, ImageError, Predictor
from model.checkpoint import CheckpointMetadata, save_checkpoint
from model.config import preset
from model.network.fcanet import FCANet


@pytest.fixture(scope="module")
def predictor():
    return Predictor.for_tests(seed=1)


@pytest.mark.parametrize("shape", [(37, 53, 3), (200, 120, 3), (64, 64), (30, 90, 4)])
def test_outputs_have_the_image_size(predictor, shape):
    img = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    pred = predictor.predict(img, [Click(shape[1] // 2, shape[0] // 2)])
    assert pred.mask.shape == shape[:2] and pred.mask.dtype == bool
    assert pred.probability.shape == shape[:2] and pred.probability.dtype == np.float32
    assert 0.0 <= pred.probability.min() <= pred.probability.max() <= 1.0
    assert pred.model_version == predictor.model_version


def test_mask_is_thresholded_probability_without_sis(predictor):
    img = np.random.default_rng(1).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    pred = predictor.predict(img, [Click(10, 10)], sis=False)
    assert np.array_equal(pred.mask, pred.probability >= 0.5)


def test_bad_clicks_and_images(predictor):
    img = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(ClickError):
        predictor.predict(img, [])
    with pytest.raises(ClickError):
        predictor.predict(img, [Click(5, 5, False)])
    with pytest.raises(ClickError):
        predictor.predict(img, [Click(5, 5), Click(50, 5, False)])
    with pytest.raises(ImageError):
        predictor.predict(b"garbage", [Click(5, 5)])


def test_clicks_change_the_prediction(predictor):
    img = np.random.default_rng(2).integers(0, 255, (48, 48, 3), dtype=np.uint8)
    a = predictor.predict(img, [Click(10, 10)]).probability
    b = predictor.predict(img, [Click(10, 10), Click(40, 40, False)]).probability
    assert not np.allclose(a, b)


def test_concurrent_calls_give_the_same_answers(predictor):
    img = np.random.default_rng(3).integers(0, 255, (60, 70, 3), dtype=np.uint8)
    clicks = [Click(30, 30), Click(5, 5, False)]
    expected = predictor.predict(img, clicks).probability
    results, errors = [], []

    def worker():
        try:
            results.append(predictor.predict(img, clicks).probability)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 8
    for r in results:
        assert np.allclose(r, expected, atol=1e-5)


def test_checkpoint_round_trip_and_batchnorm_folding(tmp_path):
    torch.manual_seed(0)
    net = FCANet(preset("tiny")).eval()
    # Give BatchNorm non-trivial statistics so folding is really tested.
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    meta = CheckpointMetadata(network=net.config, version="rt-1", short_side=48, provenance={"trained": False})
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, net, meta)
    # float32 both: folding is exact to 1e-4 there (bf16 is checked in test_inference_precision.py)
    loaded = Predictor.from_checkpoint(path, precision="fp32")
    plain = Predictor(net, meta, optimise=False, precision="fp32")
    img = np.random.default_rng(4).integers(0, 255, (50, 64, 3), dtype=np.uint8)
    clicks = [Click(20, 20), Click(50, 40, False)]
    assert loaded.model_version == "rt-1" and loaded.short_side == 48
    assert np.allclose(loaded.predict(img, clicks).probability, plain.predict(img, clicks).probability, atol=1e-4)
    assert loaded.metadata["backbone"] == "tiny"


def test_bundled_default_loads_and_says_what_it_is():
    p = Predictor.from_checkpoint()
    meta = p.metadata
    assert meta["backbone"] == "efficientnet_lite0" and meta["short_side"] == 512
    assert "trained" in meta and meta["version"] == p.model_version
    pred = p.predict(np.full((64, 96, 3), 128, np.uint8), [Click(48, 32)])
    assert pred.mask.shape == (64, 96)
