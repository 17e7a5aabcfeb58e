"""Inference-time folding of BatchNorm into the preceding convolution.

Folding removes one pass over every feature map; the folded network gives the same
outputs (up to float rounding) in eval mode and must not be trained.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused = nn.Conv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
        padding=conv.padding, dilation=conv.dilation, groups=conv.groups, bias=True,
    )
    fused.weight.data = conv.weight.data * scale.reshape(-1, 1, 1, 1)
    bias = conv.bias.data if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias.data = (bias - bn.running_mean) * scale + bn.bias
    return fused


@torch.no_grad()
def fold_batchnorm(module: nn.Module) -> nn.Module:
    """A copy of `module` (in eval mode) with every Conv2d -> BatchNorm2d pair folded.

    Pairs are found among each module's direct children in registration order, which is
    how every block of this package is written.
    """
    module = copy.deepcopy(module).eval()
    for parent in module.modules():
        names = list(parent._modules.keys())
        for a, b in zip(names, names[1:]):
            conv, bn = parent._modules[a], parent._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                parent._modules[a] = _fold(conv, bn)
                parent._modules[b] = nn.Identity()
    return module
