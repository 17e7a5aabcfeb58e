"""The boundary head: the logits corrected at stride 2 from the network's own input.

Not in the paper (`NetworkConfig.boundary_channels`, 0 by default). FCA-Net's decoder predicts at
stride 4 and its logits are upsampled bilinearly, so an edge can only be placed to within a few
working pixels and parts narrower than that (legs, tails, handles) blur away. This head looks at the
5-channel input (normalised image and the two click maps) averaged to stride 2, next to the decoder's
logits upsampled to stride 2, and computes a correction of the logits there: three small convolutions,
the last one zero-initialised. The network adds the correction, upsampled, to its upsampled logits, so a
network that grows the head predicts exactly what it did before training starts (`grow_boundary_head`).

Shapes: inputs (B, 5, H, W) at the working resolution, coarse logits (B, 1, h, w) at stride 4;
forward returns the correction (B, 1, ceil(H/2), ceil(W/2)) at stride 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import conv_bn_relu, init_conv_weights


class BoundaryHead(nn.Module):
    def __init__(self, channels: int, in_channels: int = 5):
        super().__init__()
        self.convs = nn.Sequential(*conv_bn_relu(in_channels + 1, channels), *conv_bn_relu(channels, channels, dilation=2))
        self.out = nn.Conv2d(channels, 1, 1)
        init_conv_weights(self.convs)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, inputs: torch.Tensor, coarse_logits: torch.Tensor) -> torch.Tensor:
        fine = F.avg_pool2d(inputs, 2, ceil_mode=True)
        up = F.interpolate(coarse_logits, size=fine.shape[2:], mode="bilinear", align_corners=True)
        return self.out(self.convs(torch.cat([fine, up], dim=1)))


def grow_boundary_head(network: nn.Module, channels: int) -> nn.Module:
    """A copy of `network` (an FCANet) with a fresh boundary head of `channels` and every other weight
    kept: its predictions equal the original's until the head is trained. Returns `network` itself
    when it already has that head. Refuses (ValueError) to remove or replace a head it already has:
    either would silently discard trained weights."""
    from .fcanet import FCANet

    have = network.config.boundary_channels
    if have == channels:
        return network
    if channels < 1:
        raise ValueError(f"a boundary head needs at least 1 channel, got {channels}"
                         + (f" (the network's own head has {have}: it is kept, not removed)" if have else ""))
    if have:
        raise ValueError(f"the network already has a boundary head of {have} channels: growing one of "
                         f"{channels} would discard its trained weights")
    grown = FCANet(network.config.with_(boundary_channels=channels))
    state = {k: v for k, v in network.state_dict().items() if not k.startswith("boundary_head.")}
    missing, unexpected = grown.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("boundary_head.") for k in missing):
        raise ValueError(f"cannot grow a boundary head: missing {missing}, unexpected {unexpected}")
    return grown.train(network.training)
