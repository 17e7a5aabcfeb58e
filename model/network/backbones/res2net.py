"""Res2Net-101 v1b (26w x 4s) at output stride 16, laid out as the authors' FCA-Net backbone.

- `pre` (prefix backbone_pre.): deep stem conv1 = [3x3 stride 2 -> 32, BN, ReLU, 3x3 -> 32,
  BN, ReLU, 3x3 -> 64], bn1, relu, maxpool, layer1 -> F1: (B, 256, H/4, W/4).
- `last` (prefix backbone_last.): layer2 (stride 2), layer3 (stride 2), layer4 (stride 1,
  multi-grid dilations 2, 4, 8) -> F4: (B, 2048, H/16, W/16). Same stage plan as the ResNet.

Res2Net block: the 1x1 reduction is split into `scale` groups of `width` channels; groups
0..scale-2 each go through a 3x3 conv (`convs`, `bns`), the last group is passed on. In
a normal block group i also receives group i-1's output (the hierarchical residual); in the
first block of a stage (stype "stage") the groups are independent and the passed-on group is
average-pooled when the block strides. v1b: the projection shortcut average-pools first
(stride x stride, ceil mode) and then applies a stride-1 1x1 conv.

Names and shapes follow the released code (github.com/frazerlin/fcanet,
model/res2net_split.py) so its checkpoints load with strict=True. No ImageNet weights
offline: see `resnet.no_pretrained_weights`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import Backbone
from ..blocks import init_conv_weights
from .resnet import EXPANSION, LAYERS_101, STAGE_PLANES, StagePlan, no_pretrained_weights, stage_plans

BASE_WIDTH = 26
SCALE = 4


class Bottle2neck(nn.Module):
    """x: (B, inplanes, H, W) -> (B, 4 * planes, H / stride, W / stride).

    first_of_stage: the "stage" block type (independent groups, pooled pass-through).
    """

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None, first_of_stage: bool = False,
                 base_width: int = BASE_WIDTH, scale: int = SCALE):
        super().__init__()
        if scale < 2:
            raise ValueError(f"Res2Net scale must be at least 2, got {scale}")
        width = int(math.floor(planes * base_width / 64.0))
        self.width, self.first_of_stage = width, first_of_stage
        self.conv1 = nn.Conv2d(inplanes, width * scale, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width * scale)
        # Only a striding stage block must shrink its pass-through group to match the others.
        self.pool = nn.AvgPool2d(3, stride=stride, padding=1) if first_of_stage and stride > 1 else None
        self.convs = nn.ModuleList(
            nn.Conv2d(width, width, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
            for _ in range(scale - 1)
        )
        self.bns = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(scale - 1))
        self.conv3 = nn.Conv2d(width * scale, planes * EXPANSION, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * EXPANSION)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        groups = torch.split(self.relu(self.bn1(self.conv1(x))), self.width, dim=1)
        outputs: list[torch.Tensor] = []
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            sp = groups[i] if i == 0 or self.first_of_stage else outputs[-1] + groups[i]
            outputs.append(self.relu(bn(conv(sp))))
        rest = groups[-1]
        outputs.append(self.pool(rest) if self.pool is not None else rest)
        out = self.bn3(self.conv3(torch.cat(outputs, dim=1)))
        return self.relu(out + shortcut)


def make_stage(inplanes: int, planes: int, plan: StagePlan) -> nn.Sequential:
    """One stage; the first block is the "stage" type and carries the stride and the v1b
    shortcut (names downsample.0 AvgPool, downsample.1 conv, downsample.2 BN)."""
    cout = planes * EXPANSION
    downsample = None
    if plan.stride != 1 or inplanes != cout:
        downsample = nn.Sequential(
            nn.AvgPool2d(plan.stride, stride=plan.stride, ceil_mode=True, count_include_pad=False),
            nn.Conv2d(inplanes, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
    blocks = [Bottle2neck(inplanes, planes, plan.stride, plan.dilations[0], downsample, first_of_stage=True)]
    blocks += [Bottle2neck(cout, planes, 1, d) for d in plan.dilations[1:]]
    return nn.Sequential(*blocks)


class Res2NetPre(nn.Module):
    """Deep stem + layer1: (B, in_channels, H, W) -> F1 (B, 256, H/4, W/4)."""

    def __init__(self, in_channels: int, plan: StagePlan):
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 32, 3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 64, 3, padding=1, bias=False),
        )
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = make_stage(64, STAGE_PLANES[0], plan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x)))))


class Res2NetLast(nn.Module):
    """layer2..layer4: F1 (B, 256, H/4, W/4) -> F4 (B, 2048, H/16, W/16)."""

    def __init__(self, plans: tuple[StagePlan, StagePlan, StagePlan]):
        super().__init__()
        self.layer2 = make_stage(STAGE_PLANES[0] * EXPANSION, STAGE_PLANES[1], plans[0])
        self.layer3 = make_stage(STAGE_PLANES[1] * EXPANSION, STAGE_PLANES[2], plans[1])
        self.layer4 = make_stage(STAGE_PLANES[2] * EXPANSION, STAGE_PLANES[3], plans[2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.layer3(self.layer2(x)))


def build_res2net101(in_channels: int = 5, pretrained: bool = False) -> Backbone:
    """Res2Net-101 v1b 26w x 4s split into `pre` / `last`; random He initialisation
    (pretrained=True raises FcanetInputError)."""
    if pretrained:
        raise no_pretrained_weights("res2net101")
    plans = stage_plans(LAYERS_101)
    pre = Res2NetPre(in_channels, plans[0])
    last = Res2NetLast(plans[1:])
    init_conv_weights(pre)
    init_conv_weights(last)
    return Backbone(pre=pre, last=last, low_channels=STAGE_PLANES[0] * EXPANSION,
                    high_channels=STAGE_PLANES[3] * EXPANSION)
