import numpy as np
import pytest
from scipy import ndimage

from model.training.click_sampler import ClickSimulationConfig, simulate_clicks


def _disk(h=120, w=160, cy=60, cx=70, r=35):
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


@pytest.mark.parametrize("seed", range(8))
def test_constraints_hold_with_fixed_parameters(seed):
    gt = _disk()
    cfg = ClickSimulationConfig(p1_choices=(10,), p2_choices=(10,), n1_choices=(15,), n3_choices=(15,))
    clicks = simulate_clicks(gt, np.random.default_rng(seed), cfg)
    inside = ndimage.distance_transform_edt(np.pad(gt, 1))[1:-1, 1:-1]
    outside = ndimage.distance_transform_edt(~gt)
    pos = [c for c in clicks if c.positive]
    neg = [c for c in clicks if not c.positive]
    assert 1 <= len(pos) <= 10 and 0 <= len(neg) <= 10
    assert clicks[0].positive
    for c in pos[1:]:
        assert inside[int(c.y), int(c.x)] >= 10
    for a in range(len(pos)):
        for b in range(a + 1, len(pos)):
            assert np.hypot(pos[a].x - pos[b].x, pos[a].y - pos[b].y) >= 10
    for c in neg:
        assert 15 <= outside[int(c.y), int(c.x)] <= 80
    for a in range(len(neg)):
        for b in range(a + 1, len(neg)):
            assert np.hypot(neg[a].x - neg[b].x, neg[a].y - neg[b].y) >= 15


def test_first_click_is_the_most_central_point():
    gt = np.zeros((50, 90), bool)
    gt[10:40, 5:85] = True  # a wide rectangle: centre row 24/25
    clicks = simulate_clicks(gt, np.random.default_rng(0))
    inside = ndimage.distance_transform_edt(np.pad(gt, 1))[1:-1, 1:-1]
    assert inside[int(clicks[0].y), int(clicks[0].x)] == inside.max()


def test_counts_cover_the_range_over_many_draws():
    gt = _disk(200, 260, 100, 130, 70)
    counts = [sum(c.positive for c in simulate_clicks(gt, np.random.default_rng(s))) for s in range(60)]
    assert min(counts) == 1 and max(counts) >= 6


def test_empty_mask_raises():
    with pytest.raises(ValueError):
        simulate_clicks(np.zeros((10, 10), bool), np.random.default_rng(0))


def test_first_click_only_share_gives_the_anchor_alone_that_often():
    gt = _disk(200, 260, 100, 130, 70)
    cfg = ClickSimulationConfig(first_click_only_probability=0.5)
    draws = [simulate_clicks(gt, np.random.default_rng(s), cfg) for s in range(200)]
    alone = [d for d in draws if len(d) == 1]
    assert 70 <= len(alone) <= 130
    anchor = simulate_clicks(gt, np.random.default_rng(0))[0]
    assert all(d[0] == anchor for d in draws)
    assert max(len(d) for d in draws) >= 6
    assert all(len(simulate_clicks(gt, np.random.default_rng(s), ClickSimulationConfig(first_click_only_probability=1.0))) == 1
               for s in range(10))


def test_first_click_only_off_leaves_the_papers_draws_unchanged():
    gt = _disk()
    for s in range(5):
        assert simulate_clicks(gt, np.random.default_rng(s)) == \
            simulate_clicks(gt, np.random.default_rng(s), ClickSimulationConfig(first_click_only_probability=0.0))


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_first_click_only_probability_outside_0_1_is_refused(p):
    with pytest.raises(ValueError, match="first_click_only_probability"):
        ClickSimulationConfig(first_click_only_probability=p)
