"""L2-SP: a penalty that keeps fine-tuned weights near the base model's (Li et al., 2018).

Fine-tuning on a few dozen corrections of one domain pulls every weight towards that domain;
without the original training data to mix in, nothing pulls back. L2-SP adds
weight / 2 * ||w - w0||^2 (w0: the starting weights) to the loss, so a weight moves only as
far as the corrections keep asking it to. It is applied as a gradient term, weight * (w - w0),
added to every parameter's gradient just before each optimiser step (momentum included, as if it
were part of the loss), so the training loop itself needs no change.
"""

from __future__ import annotations

import torch


class L2SP:
    """Attach to an optimiser over `network`'s parameters; `distance()` reports ||w - w0||."""

    def __init__(self, network: torch.nn.Module, optimizer: torch.optim.Optimizer, weight: float):
        if weight < 0:
            raise ValueError(f"the L2-SP weight must be 0 or more, got {weight}")
        self.weight = float(weight)
        self.params = [p for p in network.parameters() if p.requires_grad]
        self.start = [p.detach().clone() for p in self.params]
        self._handle = optimizer.register_step_pre_hook(self._pull) if self.weight > 0 else None

    def _pull(self, optimizer, args, kwargs) -> None:
        with torch.no_grad():
            for p, p0 in zip(self.params, self.start):
                if p.grad is not None:
                    p.grad.add_(p - p0, alpha=self.weight)

    def distance(self) -> float:
        """Euclidean distance of all trainable weights from the start (a measure of drift)."""
        with torch.no_grad():
            return float(torch.sqrt(sum(((p - p0) ** 2).sum() for p, p0 in zip(self.params, self.start))))

    def remove(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
