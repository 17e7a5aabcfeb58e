"""Loading the FCA-Net checkpoints released by the paper's authors (`fcanet-resnet.pth`,
`fcanet-res2net.pth`).

Those files are bare PyTorch state_dicts of their FCANet(backbone='resnet' | 'res2net');
our ResNet-101 and Res2Net-101 presets have exactly their parameter names, shapes and channel
order, so they load with strict=True. Files are read with `weights_only=True`: a pickle that
holds anything but tensors and plain containers is refused, never executed.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..config import preset
from ..errors import CheckpointError
from .fcanet import FCANet

#: Keys that only the authors' ResNet-101 / Res2Net-101 FCA-Net state_dicts have
#: (layer3.22: the 23rd block of a 101-layer stage 3; conv1.0 / convs.0: Res2Net's deep stem
#: and split 3x3 convs).
_SIGNATURES: dict[str, tuple[str, ...]] = {
    "resnet101": (
        "backbone_pre.conv1.weight",
        "backbone_pre.layer1.0.conv2.weight",
        "backbone_last.layer3.22.conv2.weight",
        "backbone_last.layer4.2.conv2.weight",
        "first_conv.convs.5.0.weight",
        "my_aspp.aspp1.atrous_conv.weight",
    ),
    "res2net101": (
        "backbone_pre.conv1.0.weight",
        "backbone_pre.layer1.0.convs.0.weight",
        "backbone_last.layer3.22.convs.0.weight",
        "backbone_last.layer4.2.convs.2.weight",
        "first_conv.convs.5.0.weight",
        "my_aspp.aspp1.atrous_conv.weight",
    ),
}
_CONTAINER_KEYS = ("state_dict", "model")
_SHOWN = 5  # how many offending keys an error message names


def detect_official_architecture(state_dict: Mapping[str, Any]) -> str:
    """"resnet101" or "res2net101", judged from the keys only (values are not looked at).

    Raises CheckpointError for any other key set (our EfficientNet/tiny networks included).
    """
    keys = set(state_dict)
    for arch, signature in _SIGNATURES.items():
        if all(k in keys for k in signature):
            return arch
    sample = ", ".join(sorted(keys)[:_SHOWN]) or "(no keys)"
    hint = ""
    if any(k.startswith("backbone_pre._") for k in keys):
        hint = " (it looks like an EfficientNet network: load our .safetensors checkpoints with model.checkpoint)"
    raise CheckpointError(
        "not an FCA-Net checkpoint of the authors (ResNet-101 or Res2Net-101 backbone): "
        f"{len(keys)} keys, e.g. {sample}{hint}"
    )


# torch's weights_only refusal names the offending global as "Unsupported global: GLOBAL x.Y ...".
_REFUSED_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")


def _read(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = _REFUSED_GLOBAL.search(str(exc))
        if refused:  # a custom class, a function, ...: never executed
            raise CheckpointError(
                f"refused to load {path}: it pickles {refused.group(1)}, which is not a tensor or a "
                f"plain container (torch.load weights_only=True does not run such objects, for safety)"
            ) from None
        detail = str(exc).split("WeightsUnpickler error:")[-1].strip().splitlines()[0:1]
        raise CheckpointError(
            f"cannot read {path} as a PyTorch checkpoint (not a torch.save file, or corrupt): "
            f"{detail[0] if detail else type(exc).__name__}"
        ) from None
    except EOFError:
        raise CheckpointError(f"cannot read {path} as a PyTorch checkpoint: the file is empty or truncated") from None
    except Exception as exc:  # truncated zip, ...
        raise CheckpointError(
            f"cannot read {path} as a PyTorch checkpoint: {type(exc).__name__}: {str(exc)[:300]}"
        ) from None


def extract_state_dict(loaded: Any) -> dict[str, torch.Tensor]:
    """The name -> tensor dict inside what torch.load returned: the object itself, or the one
    under "state_dict" / "model"; a DataParallel "module." prefix is removed."""
    if isinstance(loaded, Mapping):
        for key in _CONTAINER_KEYS:
            if isinstance(loaded.get(key), Mapping):
                loaded = loaded[key]
                break
    if not isinstance(loaded, Mapping) or not loaded:
        raise CheckpointError(
            f"the checkpoint holds {type(loaded).__name__}, not a non-empty state_dict (a dict of name -> tensor)"
        )
    not_tensors = [str(k) for k, v in loaded.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(
            f"the checkpoint's state_dict has {len(not_tensors)} entries that are not tensors, "
            f"e.g. {', '.join(not_tensors[:_SHOWN])}"
        )
    state = {str(k): v for k, v in loaded.items()}
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _check_against(state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], arch: str) -> None:
    """CheckpointError naming missing, unexpected and wrongly shaped keys, if any."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(expected[k].shape)})"
        for k in sorted(set(state) & set(expected))
        if tuple(state[k].shape) != tuple(expected[k].shape)
        or state[k].is_floating_point() != expected[k].is_floating_point()
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys, e.g. {', '.join(missing[:_SHOWN])}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys, e.g. {', '.join(unexpected[:_SHOWN])}")
    if wrong:
        problems.append(f"{len(wrong)} tensors of the wrong shape or kind, e.g. {'; '.join(wrong[:_SHOWN])}")
    if problems:
        raise CheckpointError(f"checkpoint does not match the authors' {arch} FCA-Net: " + "; ".join(problems))


def load_official_checkpoint(path: str | os.PathLike) -> FCANet:
    """The authors' released FCA-Net as our `FCANet`, in eval mode on the CPU.

    The network is built on the meta device and takes the file's tensors as its parameters
    (no random initialisation of 73M weights that would be overwritten at once). Floating
    tensors are converted to float32 (a half-precision copy of the file loads too).
    Raises CheckpointError for a missing or unreadable file, a refused pickle, an unknown key
    set, or keys/shapes that differ from the detected architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}")
    state = extract_state_dict(_read(path))
    arch = detect_official_architecture(state)
    with torch.device("meta"):
        network = FCANet(preset(arch))
    expected = network.state_dict()
    _check_against(state, expected, arch)
    state = {
        k: (v.to(expected[k].dtype) if v.dtype != expected[k].dtype else v).contiguous()
        for k, v in state.items()
    }
    network.load_state_dict(state, strict=True, assign=True)
    left_on_meta = [n for n, t in [*network.named_parameters(), *network.named_buffers()] if t.is_meta]
    if left_on_meta:  # a tensor the state_dict does not cover (a non-persistent buffer)
        raise CheckpointError(f"internal error: {', '.join(left_on_meta[:_SHOWN])} not filled from {path}")
    return network.eval()
