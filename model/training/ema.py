"""An exponential moving average of the network's weights (Polyak averaging).

Not in the paper (its `ema_decay` is 0, which turns this off). With SGD at a high learning
rate on small CPU batches, consecutive checkpoints differ a lot; the average of the last few
hundred steps is a steadier model, so with `ema_decay > 0` the checkpoints, validation and the
bundled model all use the averaged weights while the optimiser keeps training the raw ones.
"""

from __future__ import annotations

import copy

import torch


class WeightAverage:
    """avg <- d * avg + (1 - d) * weights after every step, for parameters and float buffers
    (BatchNorm running statistics); integer buffers are copied. The effective decay warms up as
    min(decay, (1 + n) / (10 + n)) so that an average started late (on resume) catches up fast."""

    def __init__(self, network: torch.nn.Module, decay: float, updates: int = 0):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.updates = int(updates)
        self.network = copy.deepcopy(network).eval()
        for p in self.network.parameters():
            p.requires_grad_(False)

    def current_decay(self) -> float:
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self, network: torch.nn.Module) -> None:
        d = self.current_decay()
        source = network.state_dict()
        for name, avg in self.network.state_dict().items():
            value = source[name].detach()
            if avg.dtype.is_floating_point:
                avg.lerp_(value.to(avg.dtype), 1.0 - d)
            else:
                avg.copy_(value)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"weights": self.network.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.network.load_state_dict(state["weights"], strict=True)
        self.updates = int(state["updates"])
