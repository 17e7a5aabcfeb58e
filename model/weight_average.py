"""A weighted average of checkpoints of one network ("model soup").

Two fine-tunings that start from the same weights stay in one basin, so their average is a network
of its own, often with the strengths of both: here, a stage that sharpened the first click and
the model it started from, which was better at the later clicks. Averaging is not training: no
data is read, and the result is scored like any other candidate.
"""

from __future__ import annotations

import os
from typing import Sequence

import torch

from .checkpoint import CheckpointMetadata, file_digest, load_checkpoint
from .errors import CheckpointError


def average_checkpoints(paths: Sequence[str | os.PathLike], weights: Sequence[float] | None = None, *,
                        version: str) -> tuple[torch.nn.Module, CheckpointMetadata]:
    """(network, metadata) whose floating-point tensors are sum_i w_i * tensor_i (weights normalised
    to sum 1; uniform when None). Integer tensors (BatchNorm's step counters) come from the first
    checkpoint. All checkpoints must share the network config, working size and grid alignment."""
    if len(paths) < 2:
        raise CheckpointError("averaging needs at least two checkpoints")
    weights = [1.0] * len(paths) if weights is None else [float(w) for w in weights]
    if len(weights) != len(paths) or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise CheckpointError(f"need one non-negative weight per checkpoint, not {weights}")
    total = sum(weights)
    weights = [w / total for w in weights]

    network, first = load_checkpoint(paths[0])
    states = [network.state_dict()]
    metas = [first]
    for path in paths[1:]:
        net, meta = load_checkpoint(path)
        same = (meta.network, meta.short_side, meta.grid_align) == (first.network, first.short_side, first.grid_align)
        if not same:
            raise CheckpointError(f"{path} is not the same network as {paths[0]} (config, short side or "
                                  "grid alignment differ): only checkpoints of one network can be averaged")
        states.append(net.state_dict())
        metas.append(meta)

    averaged = {}
    for key, tensor in states[0].items():
        if tensor.is_floating_point():
            averaged[key] = sum(w * s[key].double() for w, s in zip(weights, states)).to(tensor.dtype)
        else:
            averaged[key] = tensor.clone()
    network.load_state_dict(averaged, strict=True)

    trained_on: list[str] = []
    for meta in metas:
        trained_on += [d for d in meta.provenance.get("trained_on", []) if d not in trained_on]
    provenance = {
        "trained": any(m.describe()["trained"] for m in metas),  # the one reading of "trained" (checkpoint.py)
        "trained_on": trained_on,
        # each part's own provenance (data, recipe, steps) travels with it, so a bundled average
        # still says how every part was trained
        "averaged": [{"version": m.version, "sha256": file_digest(p), "weight": round(w, 6),
                      "provenance": m.provenance} for m, p, w in zip(metas, paths, weights)],
    }
    metadata = CheckpointMetadata(network=first.network, version=version, short_side=first.short_side,
                                  grid_align=first.grid_align, provenance=provenance)
    return network.eval(), metadata
