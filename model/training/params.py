"""Parameter groups: the backbone learns at a tenth of the head's rate, except the click
channels of the first conv, which are new and learn at the head's rate.

Why: in a calibration run with zero-initialised click filters at the backbone rate, those
filters stayed near zero and the network ignored every click after the first.
"""

from __future__ import annotations

import torch
from torch import nn


def first_conv(network: nn.Module) -> nn.Conv2d:
    """The backbone's first convolution (the one fed RGB + click maps)."""
    for m in network.backbone_pre.modules():
        if isinstance(m, nn.Conv2d):
            return m
    raise ValueError("the backbone has no convolution")


def parameter_groups(network: nn.Module, lr: float, backbone_lr_ratio: float) -> list[dict]:
    """SGD groups: head at lr, backbone at lr * ratio, first conv at lr with its RGB
    filters' gradients scaled by the ratio (a gradient hook), so RGB keeps the backbone rate."""
    stem = first_conv(network)
    stem_params = {id(p) for p in stem.parameters()}
    head_ids = {id(p) for m in network.head_modules() for p in m.parameters()}
    backbone = [p for p in network.parameters() if id(p) not in head_ids and id(p) not in stem_params]
    head = [p for p in network.parameters() if id(p) in head_ids]
    ratio = float(backbone_lr_ratio)

    def scale_rgb(grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        grad[:, :3] *= ratio
        return grad

    stem.weight.register_hook(scale_rgb)
    return [
        {"params": backbone, "lr": lr * ratio, "base_lr": lr * ratio, "name": "backbone"},
        {"params": list(stem.parameters()), "lr": lr, "base_lr": lr, "name": "first_conv"},
        {"params": head, "lr": lr, "base_lr": lr, "name": "head"},
    ]
