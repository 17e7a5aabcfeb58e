"""The band cut: it follows colour edges, can add what the network missed, and keeps the click labels."""

import numpy as np
import pytest

from model import Click
from model.band_cut import BandCutConfig, CutWeights, band_cut
from model.graphcut_refine import graphcut_refine


def _disk_scene(seed: int = 0):
    """(120, 160) image: a bright noisy disk (radius 40 at (80, 60)) on a dark noisy background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:120, :160]
    truth = (yy - 60) ** 2 + (xx - 80) ** 2 <= 40 ** 2
    img = np.where(truth[..., None], 200, 40).astype(np.int16) + rng.integers(-20, 21, (120, 160, 3))
    return np.clip(img, 0, 255).astype(np.uint8), truth


def _under_segmented(truth: np.ndarray) -> np.ndarray:
    """A network that found only the disk's left part: confident there, unsure just outside."""
    prob = np.full(truth.shape, 0.3, np.float32)
    prob[:, :70] = np.where(truth[:, :70], 0.9, 0.3)
    return prob


def test_the_cut_grows_past_the_network_mask_box():
    img, truth = _disk_scene()
    prob = _under_segmented(truth)
    # Each round may add up to the band's width (8 px on this small disk), so give it rounds enough.
    out = band_cut(img, prob, [Click(60, 60)], BandCutConfig(rounds=8))
    mask = out >= 0.5
    one_round = band_cut(img, prob, [Click(60, 60)], BandCutConfig(rounds=1)) >= 0.5
    assert mask.sum() > one_round.sum() + 1000
    right_of_box = int(np.nonzero(prob >= 0.5)[1].max())
    assert mask[:, right_of_box + 1:].sum() > 0.5 * truth[:, right_of_box + 1:].sum()
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.9
    # GrabCut's region froze a sure-background frame at the box's margin: it cannot get there.
    old = graphcut_refine(img, prob, [Click(60, 60)]) >= 0.5
    assert old[:, 110:].sum() == 0


def test_the_cut_follows_the_edge_and_keeps_the_soft_values_elsewhere():
    img, truth = _disk_scene(1)
    yy, xx = np.mgrid[:120, :160]
    # A blurred, slightly too large disk: the cut pulls its boundary onto the colour edge.
    prob = np.clip(1.0 - (np.sqrt((yy - 60) ** 2 + (xx - 80) ** 2) - 40) / 16, 0, 1).astype(np.float32) * 0.98
    out = band_cut(img, prob, [Click(80, 60)])
    before = ((prob >= 0.5) != truth).sum()
    after = ((out >= 0.5) != truth).sum()
    assert after < before / 2
    far = (np.sqrt((yy - 60) ** 2 + (xx - 80) ** 2) > 90)
    np.testing.assert_array_equal(out[far], prob[far])


def test_click_disks_are_sure_labels():
    img, truth = _disk_scene(2)
    prob = np.where(truth, 0.95, 0.05).astype(np.float32)
    out = band_cut(img, prob, [Click(80, 60), Click(60, 50, False)], BandCutConfig(disk_radius=3))
    assert out[50, 60] < 0.5 and out[60, 80] >= 0.5


def test_precomputed_weights_give_the_same_answer():
    img, truth = _disk_scene(3)
    prob = _under_segmented(truth)
    clicks = [Click(60, 60)]
    np.testing.assert_array_equal(band_cut(img, prob, clicks), band_cut(img, prob, clicks, weights=CutWeights.of(img)))


def test_bad_inputs():
    with pytest.raises(ValueError, match="differ in size"):
        band_cut(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 11), np.float32), [Click(1, 1)])
    with pytest.raises(ValueError, match="min_band"):
        BandCutConfig(min_band=0)
    empty = np.zeros((10, 10), np.float32)
    np.testing.assert_array_equal(band_cut(np.zeros((10, 10, 3), np.uint8), empty, [Click(1, 1)]), empty)
