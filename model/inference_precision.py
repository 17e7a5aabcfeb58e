"""The arithmetic of the network's forward pass at inference: float32 (the reference) or
bfloat16 autocast, and which one `auto` picks.

bfloat16 pays only where the CPU computes it natively (AVX512-BF16 or AMX): oneDNN then runs the
convolutions at about half the float32 time on 2 cores (`fcanet benchmark --precisions fp32,bf16`,
docs/speed.md). Elsewhere PyTorch emulates it and it is slower, so `auto` keeps float32 there and
on every non-CPU device. The masks stay within the tolerance measured against float32
(docs/speed.md); the refinements and everything after the network run in float32 either way.

torch is imported inside the functions so that the CLI's flag definitions (`--precision`) can
import PRECISIONS without loading it.
"""

from __future__ import annotations

import contextlib

#: What `Predictor(precision=...)` and `--precision` accept.
PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16(device) -> bool:
    """True on a CPU whose instruction set computes bfloat16 itself (device: a torch.device)."""
    if device.type != "cpu":
        return False
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def resolve_precision(requested: str, device) -> str:
    """"fp32" or "bf16" for `requested` (one of PRECISIONS) on `device`; ValueError otherwise."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    if requested == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return requested


def forward_context(precision: str, device):
    """The context the forward pass runs in: bfloat16 autocast, or nothing for float32."""
    if precision == "bf16":
        import torch

        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
