"""Checkpoints: safetensors weights plus self-describing metadata.

A checkpoint is one `.safetensors` file. Its header metadata holds, under the key
"fcanet", a JSON document (`CheckpointMetadata`): the network configuration (so the file
rebuilds its own network), input normalisation, working resolution, version and
provenance (initialisation, training data, recipe). Loading never unpickles anything.
The authors' released `.pth` files are handled in `model.network.official`.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import NetworkConfig
from .errors import CheckpointError

FORMAT_VERSION = 1
METADATA_KEY = "fcanet"


def file_digest(path: str | os.PathLike | None) -> str | None:
    """First 16 hex digits of a file's sha256, or None for no file: names weights in logs and
    provenance, because a path (the bundled file above all) is replaced by later versions."""
    if not path or not Path(path).is_file():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class CheckpointMetadata:
    """What a checkpoint says about itself.

    provenance keys used by this project: "initialisation" (e.g. "imagenet:efficientnet-lite0"),
    "trained_on" (list of dataset names), "recipe" (training config dict), "steps",
    "trained" (bool: False for an ImageNet-initialised head that never saw a mask).
    """

    network: NetworkConfig
    version: str
    short_side: int = 512
    #: Trained on 16k + 1 crops, so inference pads the working image to 16k + 1
    #: (`model/preprocess.py` grid_padding). False for checkpoints written before the field.
    grid_align: bool = False
    provenance: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    format_version: int = FORMAT_VERSION

    @property
    def normalisation(self) -> str:
        return self.network.normalisation

    def to_json(self) -> str:
        data = asdict(self)
        data["network"] = self.network.to_dict()
        return json.dumps(data, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> "CheckpointMetadata":
        data = json.loads(text)
        if data.get("format_version", 0) > FORMAT_VERSION:
            raise CheckpointError(
                f"checkpoint format {data.get('format_version')} is newer than this package supports ({FORMAT_VERSION})"
            )
        data["network"] = NetworkConfig.from_dict(data["network"])
        return CheckpointMetadata(**data)

    def describe(self) -> dict[str, Any]:
        """A flat, JSON-friendly summary for CLIs, /health and model cards."""
        return {
            "version": self.version,
            "architecture": "fcanet",
            "backbone": self.network.backbone,
            "normalisation": self.network.normalisation,
            "short_side": self.short_side,
            "grid_align": self.grid_align,
            "first_click_attention": self.network.first_click_attention,
            "trained": bool(self.provenance.get("trained", False)),
            "provenance": self.provenance,
            "created_at": self.created_at,
        }


def save_checkpoint(path: str | os.PathLike, network: torch.nn.Module, metadata: CheckpointMetadata,
                    dtype: torch.dtype | None = None) -> None:
    """Write weights and metadata atomically (temporary file, fsync, rename).

    dtype (e.g. torch.float16) stores the floating-point tensors in that type, half the size;
    `load_checkpoint` casts them back into the float32 network. Integer tensors stay as they are.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
        bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            raise CheckpointError(f"weights {bad[:3]} do not fit in {dtype}: not saved")
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={METADATA_KEY: metadata.to_json()})
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def read_metadata(path: str | os.PathLike) -> CheckpointMetadata:
    """Only the metadata, without loading the weights."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint: {exc}") from None
    if METADATA_KEY not in meta:
        raise CheckpointError(f"{path} has no '{METADATA_KEY}' metadata: not an fcanet checkpoint")
    return CheckpointMetadata.from_json(meta[METADATA_KEY])


def load_checkpoint(path: str | os.PathLike, device: str = "cpu"):
    """(FCANet in eval mode, CheckpointMetadata) from one of our checkpoints; strict key match."""
    from .network.fcanet import FCANet

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}")
    metadata = read_metadata(path)
    try:
        state = load_file(str(path), device=device)
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"cannot read weights from {path}: {exc}") from None
    network = FCANet(metadata.network)
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not match its own network config: {exc}") from None
    return network.to(device).eval(), metadata
