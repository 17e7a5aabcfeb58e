"""Backbones: a plain dict from name to builder (see `BUILDERS`).

Every builder returns a `Backbone`: `pre` maps the 5-channel input (B, 5, H, W) to the
stride-4 features F1, `last` maps F1 to the stride-16 features F4.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from torch import nn


@dataclass
class Backbone:
    pre: nn.Module
    last: nn.Module
    low_channels: int
    high_channels: int


#: name -> "module:function"; the function takes (in_channels, pretrained) and returns a Backbone.
BUILDERS: dict[str, str] = {
    "efficientnet_lite0": "model.network.backbones.efficientnet_lite:build_efficientnet_lite0",
    "efficientnet_lite1": "model.network.backbones.efficientnet_lite:build_efficientnet_lite1",
    "resnet101": "model.network.backbones.resnet:build_resnet101",
    "res2net101": "model.network.backbones.res2net:build_res2net101",
    "tiny": "model.network.backbones.tiny:build_tiny",
}


def build_backbone(name: str, in_channels: int = 5, pretrained: bool = False) -> Backbone:
    try:
        target = BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; known: {sorted(BUILDERS)}") from None
    module_name, func_name = target.split(":")
    builder: Callable[..., Backbone] = getattr(importlib.import_module(module_name), func_name)
    return builder(in_channels=in_channels, pretrained=pretrained)
