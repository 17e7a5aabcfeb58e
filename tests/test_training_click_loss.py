import numpy as np
import pytest
import torch
import torch.nn.functional as F

from model.clicks import Click
from model.training.click_loss import NO_CLICK_DISTANCE, ClickLoss, click_distance_maps, click_weight


def test_weight_hand_values():
    d = torch.tensor([0.0, 50.0, 100.0, 300.0])
    assert torch.allclose(click_weight(d), torch.tensor([2.0, 1.4, 0.8, 0.8]))


def test_general_and_first_loss_on_a_hand_case():
    logits = torch.tensor([[[[0.0, 2.0], [-1.0, 1.0]]]])
    gt = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    pos = torch.tensor([[[[0.0, 50.0], [10.0, 10.0]]]])
    neg = torch.tensor([[[[5.0, 5.0], [100.0, 0.0]]]])
    first = torch.tensor([[[[0.0, 100.0], [0.0, 0.0]]]])
    out = ClickLoss("click")(logits, logits, gt, pos, neg, first)
    bce = F.binary_cross_entropy_with_logits(logits, gt, reduction="none")[0, 0]
    w = torch.tensor([[2.0, 1.4], [0.8, 2.0]])  # fg uses pos dist, bg uses neg dist
    assert torch.isclose(out["general"], (bce * w).mean())
    w1 = torch.tensor([[2.0, 0.8], [0.8, 0.8]])  # fg uses first dist, bg is 0.8
    assert torch.isclose(out["first"], (bce * w1).mean())
    assert torch.isclose(out["total"], out["general"] + out["first"])


def test_bce_mode_is_plain_mean_bce_and_first_is_optional():
    logits = torch.randn(2, 1, 4, 4)
    gt = (torch.rand(2, 1, 4, 4) > 0.5).float()
    d = torch.zeros(2, 1, 4, 4)
    out = ClickLoss("bce")(logits, None, gt, d, d, d)
    assert torch.isclose(out["total"], F.binary_cross_entropy_with_logits(logits, gt))
    assert "first" not in out
    with pytest.raises(ValueError):
        ClickLoss("focal")


def test_distance_maps():
    pos, neg, first = click_distance_maps([Click(0, 0), Click(3, 0)], 2, 4)
    assert pos[0, 0] == 0 and pos[0, 3] == 0 and pos[0, 1] == 1
    assert (neg == NO_CLICK_DISTANCE).all()
    assert first[0, 3] == 3


def test_first_weight_scales_only_the_first_click_head_and_the_paper_adds_them():
    torch.manual_seed(0)
    logits, first_logits = torch.randn(2, 1, 8, 8), torch.randn(2, 1, 8, 8)
    gt = (torch.rand(2, 1, 8, 8) > 0.5).float()
    dist = torch.rand(2, 1, 8, 8) * 150
    paper = ClickLoss()(logits, first_logits, gt, dist, dist, dist)
    assert torch.allclose(paper["total"], paper["general"] + paper["first"])
    heavy = ClickLoss(first_weight=3.0)(logits, first_logits, gt, dist, dist, dist)
    assert torch.allclose(heavy["general"], paper["general"]) and torch.allclose(heavy["first"], paper["first"])
    assert torch.allclose(heavy["total"], paper["general"] + 3.0 * paper["first"])
    with pytest.raises(ValueError, match="first_weight"):
        ClickLoss(first_weight=-1.0)


def test_a_negative_first_loss_weight_is_refused_by_the_config():
    from model.training.config import TrainConfig

    assert TrainConfig(out_dir="x").first_loss_weight == 1.0
    with pytest.raises(ValueError, match="first_loss_weight"):
        TrainConfig(out_dir="x", first_loss_weight=-0.5)
