"""A tiny backbone for tests: stride 4 after `pre`, stride 16 after `last`."""

from __future__ import annotations

from torch import nn

from . import Backbone
from ..blocks import conv_bn_relu, init_conv_weights


def build_tiny(in_channels: int = 5, pretrained: bool = False) -> Backbone:
    pre = nn.Sequential(conv_bn_relu(in_channels, 8, stride=2), conv_bn_relu(8, 8, stride=2))
    last = nn.Sequential(conv_bn_relu(8, 16, stride=2), conv_bn_relu(16, 16, stride=2))
    init_conv_weights(pre)
    init_conv_weights(last)
    return Backbone(pre=pre, last=last, low_channels=8, high_channels=16)
