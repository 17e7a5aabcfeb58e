"""ResNet-101 at output stride 16, laid out as the authors' FCA-Net backbone.

- `pre` (prefix backbone_pre.): conv1 7x7 stride 2 on the 5-channel input, bn1, relu,
  maxpool, layer1 -> F1: (B, 256, H/4, W/4).
- `last` (prefix backbone_last.): layer2 (stride 2), layer3 (stride 2), layer4 (stride 1,
  multi-grid dilations 2, 4, 8) -> F4: (B, 2048, H/16, W/16).

Parameter names, shapes and registration order follow the released code
(github.com/frazerlin/fcanet, model/resnet_split.py), so its checkpoints load with
strict=True. Sizes: H/4 and H/16 are rounded up (every stride-2 op pads "same").

There are no ImageNet weights offline: the paper's networks are loaded whole from the
authors' checkpoint (`model.network.official`), never assembled from an ImageNet backbone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import Backbone
from ..blocks import init_conv_weights
from ...errors import FcanetInputError

#: Bottleneck blocks per stage of the 101-layer network.
LAYERS_101 = (3, 4, 23, 3)
#: Widths of the stages' 3x3 convs; each block outputs 4x that (EXPANSION).
STAGE_PLANES = (64, 128, 256, 512)
EXPANSION = 4
#: DeepLabV3 multi-grid: layer4's three blocks use these times the stage dilation (2).
MULTI_GRID = (1, 2, 4)


@dataclass(frozen=True)
class StagePlan:
    """How one stage runs at output stride 16: the first block's stride, and the dilation
    of each block's 3x3 conv."""

    stride: int
    dilations: tuple[int, ...]


def stage_plans(layers: tuple[int, int, int, int] = LAYERS_101) -> tuple[StagePlan, ...]:
    """Output stride 16: layer3 keeps its stride, layer4 trades it for dilation 2 with
    multi-grid (2, 4, 8; three blocks whatever `layers[3]` says, as the released code does)."""
    return (
        StagePlan(1, (1,) * layers[0]),
        StagePlan(2, (1,) * layers[1]),
        StagePlan(2, (1,) * layers[2]),
        StagePlan(1, tuple(2 * g for g in MULTI_GRID)),
    )


def no_pretrained_weights(name: str) -> FcanetInputError:
    """The error for pretrained=True on a backbone whose ImageNet weights are not shipped."""
    return FcanetInputError(
        f"no ImageNet weights for the {name} backbone are available offline; build it with "
        f"pretrained=False (pretrained_backbone: false) and load the authors' FCA-Net checkpoint "
        f"with model.network.official.load_official_checkpoint(path) instead"
    )


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (stride and dilation here), 1x1 expand x4, plus the shortcut.

    Convs and their BatchNorms are registered in pairs so `fusion.fold_batchnorm` folds them.
    x: (B, inplanes, H, W) -> (B, 4 * planes, H / stride, W / stride).
    """

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * EXPANSION, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * EXPANSION)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + shortcut)


def make_stage(inplanes: int, planes: int, plan: StagePlan) -> nn.Sequential:
    """One stage of Bottlenecks; the first one carries the stride and a projection shortcut
    (1x1 conv with that stride + BN; names downsample.0 / downsample.1)."""
    cout = planes * EXPANSION
    downsample = None
    if plan.stride != 1 or inplanes != cout:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, cout, 1, stride=plan.stride, bias=False), nn.BatchNorm2d(cout)
        )
    blocks = [Bottleneck(inplanes, planes, plan.stride, plan.dilations[0], downsample)]
    blocks += [Bottleneck(cout, planes, 1, d) for d in plan.dilations[1:]]
    return nn.Sequential(*blocks)


class ResNetPre(nn.Module):
    """Stem + layer1: (B, in_channels, H, W) -> F1 (B, 256, H/4, W/4)."""

    def __init__(self, in_channels: int, plan: StagePlan):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = make_stage(64, STAGE_PLANES[0], plan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x)))))


class ResNetLast(nn.Module):
    """layer2..layer4: F1 (B, 256, H/4, W/4) -> F4 (B, 2048, H/16, W/16)."""

    def __init__(self, plans: tuple[StagePlan, StagePlan, StagePlan]):
        super().__init__()
        cin = STAGE_PLANES[0] * EXPANSION
        self.layer2 = make_stage(cin, STAGE_PLANES[1], plans[0])
        self.layer3 = make_stage(STAGE_PLANES[1] * EXPANSION, STAGE_PLANES[2], plans[1])
        self.layer4 = make_stage(STAGE_PLANES[2] * EXPANSION, STAGE_PLANES[3], plans[2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.layer3(self.layer2(x)))


def build_resnet101(in_channels: int = 5, pretrained: bool = False) -> Backbone:
    """ResNet-101 split into `pre` / `last`; random He initialisation (pretrained=True raises
    FcanetInputError: see the module docstring)."""
    if pretrained:
        raise no_pretrained_weights("resnet101")
    plans = stage_plans(LAYERS_101)
    pre = ResNetPre(in_channels, plans[0])
    last = ResNetLast(plans[1:])
    init_conv_weights(pre)
    init_conv_weights(last)
    return Backbone(pre=pre, last=last, low_channels=STAGE_PLANES[0] * EXPANSION,
                    high_channels=STAGE_PLANES[3] * EXPANSION)
