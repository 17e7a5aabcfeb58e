"""FCA-Net: a DeepLabV3+-style segmenter fed RGB + click maps, plus first-click attention.

Module names follow the authors' released code (backbone_pre, backbone_last, first_conv,
my_aspp, my_decoder, pred_decoder, first_pred_decoder), so their checkpoints load with
strict=True into the ResNet-101 and Res2Net-101 variants.

Tensor conventions: images and maps are (B, C, H, W) at the working resolution; outputs
are logits (B, 1, H, W) at the input size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import NetworkConfig
from .backbones import build_backbone
from .blocks import conv_bn_relu, init_conv_weights
from .boundary_head import BoundaryHead


class _ASPPModule(nn.Module):
    """One ASPP branch; names atrous_conv / bn as in the released code."""

    def __init__(self, cin: int, cout: int, kernel: int, dilation: int):
        super().__init__()
        pad = 0 if kernel == 1 else dilation
        self.atrous_conv = nn.Conv2d(cin, cout, kernel, padding=pad, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.atrous_conv(x)))


class ASPP(nn.Module):
    """1x1 branch, three dilated 3x3 branches and a global-pooling branch, then a 1x1 projection."""

    def __init__(self, cin: int, cout: int, dilations: tuple[int, int, int], dropout: float):
        super().__init__()
        self.aspp1 = _ASPPModule(cin, cout, 1, 1)
        self.aspp2 = _ASPPModule(cin, cout, 3, dilations[0])
        self.aspp3 = _ASPPModule(cin, cout, 3, dilations[1])
        self.aspp4 = _ASPPModule(cin, cout, 3, dilations[2])
        self.global_avg_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )
        self.conv1 = nn.Conv2d(cout * 5, cout, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.global_avg_pool(x)
        pooled = F.interpolate(pooled, size=x.shape[2:], mode="bilinear", align_corners=True)
        x = torch.cat([self.aspp1(x), self.aspp2(x), self.aspp3(x), self.aspp4(x), pooled], dim=1)
        return self.dropout(self.relu(self.bn1(self.conv1(x))))


class Decoder(nn.Module):
    """Reduce the stride-4 features, concatenate with the upsampled ASPP output, two 3x3 convs.

    high_first: concatenate [ASPP output, reduced F1] (the released code's order) instead of
    [reduced F1, ASPP output]; see `RELEASED_CHANNEL_ORDER`.
    """

    def __init__(self, low_in: int, low_out: int, high_in: int, cout: int, high_first: bool = False):
        super().__init__()
        self.high_first = high_first
        self.side_conv = conv_bn_relu(low_in, low_out, kernel=1)
        self.merge_conv = nn.Sequential(
            *conv_bn_relu(low_out + high_in, cout), *conv_bn_relu(cout, cout)
        )

    def forward(self, high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        high = F.interpolate(high, size=low.shape[2:], mode="bilinear", align_corners=True)
        parts = [high, self.side_conv(low)] if self.high_first else [self.side_conv(low), high]
        return self.merge_conv(torch.cat(parts, dim=1))


class PredDecoder(nn.Module):
    """3x3, 3x3, 1x1 -> one logit."""

    def __init__(self, cin: int, width: int):
        super().__init__()
        self.pred_conv = nn.Sequential(
            *conv_bn_relu(cin, width), *conv_bn_relu(width, width), nn.Conv2d(width, 1, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pred_conv(x)


class FirstClickAttention(nn.Module):
    """Stride-4 features + first-click map -> six 3x3 conv blocks (strides 2,1,1,2,1,1)."""

    def __init__(self, low_in: int, channels: tuple[int, ...], strides: tuple[int, ...]):
        super().__init__()
        blocks, cin = [], low_in + 1
        for cout, stride in zip(channels, strides):
            blocks.append(conv_bn_relu(cin, cout, stride=stride))
            cin = cout
        self.convs = nn.ModuleList(blocks)

    def forward(self, low: torch.Tensor, first_map: torch.Tensor) -> torch.Tensor:
        first_map = F.interpolate(first_map, size=low.shape[2:], mode="bilinear", align_corners=True)
        x = torch.cat([low, first_map], dim=1)
        for block in self.convs:
            x = block(x)
        return x


@dataclass
class FCANetOutput:
    """logits: (B, 1, H, W) main output; first_logits: (B, 1, H, W) auxiliary first-click head
    output (None when the attention branch is off)."""

    logits: torch.Tensor
    first_logits: torch.Tensor | None


#: Backbones whose networks concatenate channels in the released code's order: the attention
#: output before F4 at the ASPP input, the ASPP output before the reduced F1 in the decoder.
#: The order is invisible to parameter names and shapes, so without it the authors'
#: checkpoints load strictly yet compute garbage. Variants trained here keep the other order
#: their weights were trained with.
RELEASED_CHANNEL_ORDER = frozenset({"resnet101", "res2net101"})


class FCANet(nn.Module):
    """FCA-Net. forward(image, pos_map, neg_map, first_map) with image already normalised."""

    def __init__(self, config: NetworkConfig, pretrained_backbone: bool = False):
        super().__init__()
        self.config = config
        backbone = build_backbone(config.backbone, in_channels=5, pretrained=pretrained_backbone)
        self.backbone_pre = backbone.pre
        self.backbone_last = backbone.last
        low, high = backbone.low_channels, backbone.high_channels
        aspp_in = high
        if config.first_click_attention:
            self.first_conv = FirstClickAttention(low, config.attention_channels, config.attention_strides)
            aspp_in += config.attention_channels[-1]
        self.my_aspp = ASPP(aspp_in, config.aspp_channels, config.aspp_dilations, config.dropout)
        self.released_order = config.backbone in RELEASED_CHANNEL_ORDER
        self.my_decoder = Decoder(low, config.low_level_channels, config.aspp_channels, config.decoder_channels,
                                  high_first=self.released_order)
        self.pred_decoder = PredDecoder(config.decoder_channels, config.pred_channels)
        if config.first_click_attention:
            self.first_pred_decoder = PredDecoder(config.attention_channels[-1], config.aux_channels)
        for part in self.head_modules():
            init_conv_weights(part)
        if config.boundary_channels:
            self.boundary_head = BoundaryHead(config.boundary_channels)  # initialises itself: a zero correction

    def head_modules(self) -> list[nn.Module]:
        """Every part that is not the backbone (trained at the full learning rate)."""
        names = ["first_conv", "my_aspp", "my_decoder", "pred_decoder", "first_pred_decoder", "boundary_head"]
        return [getattr(self, n) for n in names if hasattr(self, n)]

    def forward(
        self,
        image: torch.Tensor,
        pos_map: torch.Tensor,
        neg_map: torch.Tensor,
        first_map: torch.Tensor,
        with_aux: bool = False,
    ) -> FCANetOutput:
        """image (B, 3, H, W) normalised; maps (B, 1, H, W) in [0, 1]."""
        size = image.shape[2:]
        inputs = torch.cat([image, pos_map, neg_map], dim=1)
        low = self.backbone_pre(inputs)
        high = self.backbone_last(low)
        first_logits = None
        if self.config.first_click_attention:
            attention = self.first_conv(low, first_map)
            if attention.shape[2:] != high.shape[2:]:
                attention = F.interpolate(attention, size=high.shape[2:], mode="bilinear", align_corners=True)
            high = torch.cat([attention, high] if self.released_order else [high, attention], dim=1)
            if with_aux:
                first_logits = F.interpolate(
                    self.first_pred_decoder(attention), size=size, mode="bilinear", align_corners=True
                )
        x = self.my_decoder(self.my_aspp(high), low)
        coarse = self.pred_decoder(x)
        logits = F.interpolate(coarse, size=size, mode="bilinear", align_corners=True)
        if self.config.boundary_channels:
            correction = self.boundary_head(inputs, coarse)
            logits = logits + F.interpolate(correction, size=size, mode="bilinear", align_corners=True)
        return FCANetOutput(logits=logits, first_logits=first_logits)
