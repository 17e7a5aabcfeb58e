"""Small building blocks shared by the FCA-Net head and the backbones."""

from __future__ import annotations

from torch import nn


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """conv (no bias) + BatchNorm + ReLU, 'same' padding; indices 0, 1, 2 as in the released code."""
    pad = dilation * (kernel - 1) // 2
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def init_conv_weights(module: nn.Module) -> None:
    """He initialisation for convs, unit BatchNorm: for layers that have no pretrained weights."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
