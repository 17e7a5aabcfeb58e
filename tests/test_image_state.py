"""Per-image state: set_image / predict give what the stateless path gives, and the LRU stays bounded."""

import numpy as np
import pytest

from model import Click, Predictor
from model.image_state import ImageStateCache


def _image(seed: int, shape=(70, 90, 3)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 60, shape, dtype=np.uint8)
    img[20:50, 25:65] += 150  # an object, so that the refinements have an edge to find
    return img


CLICKS = [Click(45, 35), Click(10, 10, False), Click(60, 45), Click(30, 25)]


@pytest.mark.parametrize("options", [{}, {"band_cut": False}, {"graphcut_refine": True},
                                     {"edge_refine": False, "band_cut": False}])
def test_state_reuse_gives_the_stateless_masks(options):
    base = Predictor.for_tests(seed=2)
    stateless = Predictor(base.network, base.metadata_obj, image_cache_size=0, **options)
    stateful = Predictor(base.network, base.metadata_obj, **options)
    img = _image(0)
    state = stateful.set_image(img)
    for k in range(1, len(CLICKS) + 1):
        expected = stateless.predict(img, CLICKS[:k])
        for got in (stateful.predict(state, CLICKS[:k]), stateful.predict(img, CLICKS[:k])):
            np.testing.assert_array_equal(got.mask, expected.mask)
            np.testing.assert_array_equal(got.probability, expected.probability)
    assert len(stateless.image_states) == 0
    # predict(img) found set_image's state by the image's content: one entry, not two.
    assert len(stateful.image_states) == 1 and stateful.set_image(img.copy()) is state


def test_image_states_lru_is_bounded_and_drops_the_least_recent():
    base = Predictor.for_tests(seed=2)
    predictor = Predictor(base.network, base.metadata_obj, image_cache_size=2)
    a, b, c = (predictor.set_image(_image(seed)) for seed in (1, 2, 3))
    assert len(predictor.image_states) == 2
    assert predictor.image_states.get(a.key) is None
    assert predictor.image_states.get(b.key) is b and predictor.image_states.get(c.key) is c
    predictor.set_image(_image(2))  # b is now the most recent: adding a new one drops c
    predictor.set_image(_image(4))
    assert predictor.image_states.get(c.key) is None and predictor.image_states.get(b.key) is b
    with pytest.raises(ValueError, match="cache size"):
        ImageStateCache(-1)


def test_progressive_stages_end_with_the_final_answer():
    predictor = Predictor.for_tests(seed=2)
    img = _image(5)
    stages = list(predictor.predict_stages(img, CLICKS[:2]))
    assert len(stages) == 2
    final = predictor.predict(img, CLICKS[:2])
    np.testing.assert_array_equal(stages[-1].mask, final.mask)
    np.testing.assert_array_equal(stages[-1].probability, final.probability)
    plain = Predictor(predictor.network, predictor.metadata_obj, band_cut=False)
    # The fast stage is the output without the graph cut.
    np.testing.assert_array_equal(stages[0].probability, plain.predict(img, CLICKS[:2]).probability)
    assert len(list(plain.predict_stages(img, CLICKS[:2]))) == 1


def test_predict_without_refinement_is_the_fast_stage():
    predictor = Predictor.for_tests(seed=2)
    img = _image(5)
    fast = predictor.predict(img, CLICKS[:2], refine=False)
    plain = Predictor(predictor.network, predictor.metadata_obj, band_cut=False)
    assert not fast.final and predictor.predict(img, CLICKS[:2]).final
    np.testing.assert_array_equal(fast.probability, plain.predict(img, CLICKS[:2]).probability)
    assert plain.predict(img, CLICKS[:2], refine=False).final  # nothing to skip: the one answer


def test_band_cut_and_grabcut_are_alternatives():
    base = Predictor.for_tests()
    with pytest.raises(ValueError, match="choose one"):
        Predictor(base.network, base.metadata_obj, band_cut=True, graphcut_refine=True)
    assert Predictor(base.network, base.metadata_obj, graphcut_refine=True).band_cut is None
