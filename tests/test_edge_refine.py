import numpy as np
import pytest

from model import Click, Predictor
from model.edge_refine import GuideStatistics, EdgeRefineConfig, guided_filter


def _step_scene(height=60, width=80, edge=40):
    """A dark left half and a bright right half; the object is the right half."""
    image = np.full((height, width, 3), 40, np.uint8)
    image[:, edge:] = 210
    truth = np.zeros((height, width), bool)
    truth[:, edge:] = True
    return image, truth


def _blurred_ramp(width, centre, half_width):
    """A probability that rises linearly from 0 to 1 over 2 * half_width pixels around `centre`."""
    x = np.arange(width, dtype=np.float32)
    return np.clip((x - centre) / (2 * half_width) + 0.5, 0, 1)


def test_a_blurred_probability_is_pulled_onto_the_colour_edge():
    image, truth = _step_scene()
    # The network's boundary three pixels off the true edge and blurred over twelve.
    prob = np.tile(_blurred_ramp(80, 37, 6), (60, 1))
    before = ((prob >= 0.5) != truth).sum()
    refined = guided_filter(image, prob, EdgeRefineConfig(radius=8, eps=1e-3))
    after = ((refined >= 0.5) != truth).sum()
    assert before == 3 * 60 and after == 0
    assert refined.shape == prob.shape and refined.dtype == np.float32
    assert refined.min() >= 0 and refined.max() <= 1


def test_on_a_flat_image_the_filter_only_smooths():
    image = np.full((40, 50, 3), 128, np.uint8)
    prob = np.zeros((40, 50), np.float32)
    prob[10:30, 10:40] = 1
    refined = guided_filter(image, prob, EdgeRefineConfig(radius=2, eps=1e-3))
    # With no colour variance a = 0 and q is the twice box-filtered probability: the square's
    # interior and far background keep their values.
    assert refined[20, 25] == pytest.approx(1.0, abs=1e-5) and refined[2, 2] == pytest.approx(0.0, abs=1e-5)
    assert 0 < refined[10, 25] < 1


def test_a_constant_probability_stays_constant():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)
    refined = guided_filter(image, np.full((30, 30), 0.7, np.float32), EdgeRefineConfig(radius=3))
    np.testing.assert_allclose(refined, 0.7, atol=1e-4)


@pytest.mark.parametrize("kwargs, message", [({"radius": 0}, "radius"), ({"eps": 0.0}, "eps")])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EdgeRefineConfig(**kwargs)


def test_sizes_must_match():
    with pytest.raises(ValueError, match="differ in size"):
        guided_filter(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 12), np.float32))


def test_predictor_refines_by_default_and_not_when_told_otherwise():
    image, _ = _step_scene(64, 96, 48)
    plain = Predictor.for_tests(seed=3)
    plain.edge_refine = None
    refined = Predictor.for_tests(seed=3)
    assert refined.edge_refine == EdgeRefineConfig()
    refined.edge_refine = EdgeRefineConfig(radius=4)
    clicks = [Click(70, 30)]
    p_plain = plain.predict(image, clicks, sis=False).probability
    p_refined = refined.predict(image, clicks, sis=False).probability
    assert p_plain.shape == p_refined.shape == (64, 96)
    assert not np.allclose(p_plain, p_refined)
    assert plain.metadata["edge_refine"] is False
    assert refined.metadata["edge_refine"] == {"radius": 4, "eps": 1e-3}


@pytest.mark.parametrize("argument, expected", [(True, EdgeRefineConfig()), (False, None),
                                                 (EdgeRefineConfig(radius=5), EdgeRefineConfig(radius=5))])
def test_predictor_edge_refine_argument(argument, expected):
    from model.checkpoint import CheckpointMetadata
    from model.config import preset
    from model.network.fcanet import FCANet

    meta = CheckpointMetadata(network=preset("tiny"), version="t", short_side=64)
    assert Predictor(FCANet(preset("tiny")).eval(), meta, edge_refine=argument).edge_refine == expected


def test_precomputed_image_terms_give_the_same_answer():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    prob = rng.random((30, 40)).astype(np.float32)
    config = EdgeRefineConfig(radius=4)
    stats = GuideStatistics.of(image, config)
    np.testing.assert_array_equal(guided_filter(image, prob, config, stats=stats), guided_filter(image, prob, config))


def test_the_predictor_computes_an_images_statistics_once_across_clicks(monkeypatch):
    from model import edge_refine

    calls = []
    real = edge_refine.GuideStatistics.of
    monkeypatch.setattr(edge_refine.GuideStatistics, "of", staticmethod(lambda *a: calls.append(1) or real(*a)))
    predictor = Predictor.for_tests()
    image = np.random.default_rng(4).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    for n in range(1, 4):
        predictor.predict(image, [Click(30, 20), Click(10, 10, False), Click(50, 40)][:n])
    assert len(calls) == 1
