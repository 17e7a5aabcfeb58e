"""Deepening a trained EfficientNet-Lite0 FCA-Net into a Lite1 one that predicts the same.

Not in the paper. Lite1 has the channels of Lite0 and one more block at the end of stages 1-5
(`backbones/efficientnet_lite.REPEATS`), all of them residual (stride 1, same width in and out).
Every Lite0 weight goes to its place in Lite1 (block i of stage s to block i of stage s; head,
decoder and attention unchanged), and each new block starts as the identity: its last BatchNorm's
scale and shift are zero, so the block adds nothing to its input (the "zero-init residual" of Goyal
et al. 2017, used here as a function-preserving growth step, as Net2Net's deeper networks are). The
deeper network then continues training from the trained one's function instead of from ImageNet.

A new block's other BatchNorms have no running statistics yet, and fine-tuning recipes freeze them
(`freeze_batchnorm`): `calibrate_new_blocks` measures them on real inputs first; the network's output
does not change while it does (the zero scale multiplies whatever the block computes).
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from .backbones.efficientnet_lite import pre_block_count, stage_blocks

_SOURCE, _TARGET = "efficientnet_lite0", "efficientnet_lite1"


def _block_map() -> tuple[dict[int, int], list[int]]:
    """(Lite0 block -> Lite1 block, the Lite1 blocks that have no Lite0 counterpart)."""
    mapping, new = {}, []
    for small, large in zip(stage_blocks("lite0"), stage_blocks("lite1")):
        mapping.update(zip(small, large))
        new.extend(large[len(small):])
    return mapping, new


def _module_of(block: int) -> str:
    """The state-dict prefix of a Lite1 backbone block."""
    return "backbone_pre" if block < pre_block_count("lite1") else "backbone_last"


def new_block_prefixes() -> list[str]:
    """State-dict prefixes of the blocks a deepened network adds, e.g. "backbone_pre._blocks.3."."""
    _, new = _block_map()
    return [f"{_module_of(b)}._blocks.{b}." for b in new]


def deepen_backbone(network: nn.Module, backbone: str) -> nn.Module:
    """A copy of `network` (an FCANet) on `backbone` whose predictions equal the original's; the
    one growth there is: efficientnet_lite0 -> efficientnet_lite1. Returns `network` itself when
    it already has that backbone; ValueError for any other pair."""
    from .fcanet import FCANet

    have = network.config.backbone
    if have == backbone:
        return network
    if (have, backbone) != (_SOURCE, _TARGET):
        raise ValueError(f"a {have} network cannot be deepened to {backbone}: only {_SOURCE} -> {_TARGET} "
                         "keeps the trained function")
    deep = FCANet(network.config.with_(backbone=_TARGET))
    mapping, new = _block_map()
    state = {}
    for key, value in network.state_dict().items():
        if key.startswith(("backbone_pre._blocks.", "backbone_last._blocks.")):
            _, _, index, rest = key.split(".", 3)
            target = mapping[int(index)]
            key = f"{_module_of(target)}._blocks.{target}.{rest}"
        state[key] = value
    missing, unexpected = deep.load_state_dict(state, strict=False)
    prefixes = tuple(new_block_prefixes())
    if unexpected or any(not k.startswith(prefixes) for k in missing):
        raise ValueError(f"cannot deepen: missing {missing}, unexpected {unexpected}")
    with torch.no_grad():
        for block in new:
            last_bn = deep.get_submodule(f"{_module_of(block)}._blocks.{block}")._bn2
            last_bn.weight.zero_()
            last_bn.bias.zero_()
    return deep.train(network.training)


def new_blocks(network: nn.Module) -> list[nn.Module]:
    """The blocks of a deepened (Lite1) network that `deepen_backbone` added."""
    _, new = _block_map()
    return [network.get_submodule(f"{_module_of(b)}._blocks.{b}") for b in new]


@torch.no_grad()
def calibrate_new_blocks(network: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]) -> int:
    """Running BatchNorm statistics of the added blocks, averaged over `batches` of network inputs
    (image (B, 3, H, W) normalised, click maps (B, 1, H, W) each: positive, negative, first);
    every other statistic and every weight unchanged. Returns the number of batches used."""
    was_training = network.training
    network.eval()
    norms = [m for block in new_blocks(network) for m in block.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the calibration batches
        m.train()
    count = 0
    for image, positive, negative, first in batches:
        network(image, positive, negative, first)
        count += 1
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    network.train(was_training)
    return count
