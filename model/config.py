"""Network configurations: frozen dataclasses with named presets.

A configuration is stored inside every checkpoint, so a checkpoint rebuilds its own
network with no config file beside it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

#: Input scalings. "unit" is the authors' RGB / 255 with no mean/std; "efficientnet" is the
#: (x - 127) / 128 the EfficientNet-Lite ImageNet weights expect. Click maps stay in [0, 1].
NORMALISATIONS = ("unit", "efficientnet")


@dataclass(frozen=True)
class NetworkConfig:
    """Shape of one FCA-Net. Widths are output channels of the named parts."""

    backbone: str = "efficientnet_lite0"
    normalisation: str = "efficientnet"
    aspp_channels: int = 256
    aspp_dilations: tuple[int, int, int] = (6, 12, 18)
    low_level_channels: int = 48
    decoder_channels: int = 256
    pred_channels: int = 128
    attention_channels: tuple[int, ...] = (256, 256, 256, 512, 512, 512)
    attention_strides: tuple[int, ...] = (2, 1, 1, 2, 1, 1)
    aux_channels: int = 256
    first_click_attention: bool = True
    dropout: float = 0.1
    #: Width of the boundary head (`model/network/boundary_head.py`): a residual correction of the
    #: logits at stride 2 from the input itself; 0: none, the paper's network.
    boundary_channels: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> "NetworkConfig":
        known = {f.name for f in fields(NetworkConfig)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown network config keys: {sorted(unknown)}")
        clean = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return NetworkConfig(**clean)

    def with_(self, **changes: Any) -> "NetworkConfig":
        return replace(self, **changes)


PRESETS: dict[str, NetworkConfig] = {
    # The paper's networks, widths as in the released code.
    "resnet101": NetworkConfig(backbone="resnet101", normalisation="unit"),
    "res2net101": NetworkConfig(backbone="res2net101", normalisation="unit"),
    # The CPU default: EfficientNet-Lite0 with the head scaled down to fit 150 ms a click.
    "efficientnet_lite0": NetworkConfig(
        backbone="efficientnet_lite0",
        normalisation="efficientnet",
        aspp_channels=96,
        low_level_channels=32,
        decoder_channels=48,
        pred_channels=32,
        attention_channels=(48, 48, 48, 96, 96, 96),
        aux_channels=64,
    ),
    # A few-thousand-parameter network for tests.
    "tiny": NetworkConfig(
        backbone="tiny",
        normalisation="unit",
        aspp_channels=8,
        low_level_channels=4,
        decoder_channels=8,
        pred_channels=8,
        attention_channels=(8, 8, 8, 8, 8, 8),
        aux_channels=8,
    ),
}
# The same head on EfficientNet-Lite1 (more blocks, same channels): what `model/network/deepen.py`
# makes of a trained Lite0 network.
PRESETS["efficientnet_lite1"] = PRESETS["efficientnet_lite0"].with_(backbone="efficientnet_lite1")


def preset(name: str) -> NetworkConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown network preset {name!r}; known: {sorted(PRESETS)}") from None
