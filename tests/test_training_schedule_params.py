import torch

from model.config import preset
from model.network.fcanet import FCANet
from model.training.params import first_conv, parameter_groups
from model.training.schedule import poly_lr_factor


def test_poly_then_constant_tail():
    assert poly_lr_factor(0, 100) == 1.0
    assert abs(poly_lr_factor(45, 100) - (1 - 45 / 90) ** 0.9) < 1e-12
    assert poly_lr_factor(89, 100) == poly_lr_factor(95, 100) == poly_lr_factor(99, 100)
    assert poly_lr_factor(50, 100) < poly_lr_factor(10, 100)


def test_groups_and_rgb_gradient_scaling():
    net = FCANet(preset("tiny"))
    groups = parameter_groups(net, lr=1.0, backbone_lr_ratio=0.1)
    names = {g["name"]: g for g in groups}
    assert names["backbone"]["lr"] == 0.1 and names["head"]["lr"] == 1.0 and names["first_conv"]["lr"] == 1.0
    total = sum(len(g["params"]) for g in groups)
    assert total == len(list(net.parameters()))
    conv = first_conv(net)
    conv.weight.grad = None
    x = torch.ones(1, 5, 8, 8)
    conv(x).sum().backward()
    g = conv.weight.grad
    # Same input everywhere, so unscaled gradients are equal across input channels.
    assert torch.allclose(g[:, :3], 0.1 * g[:, 3:4].expand_as(g[:, :3]), atol=1e-6)
