"""Retention methods: what fine-tuning may not take from the starting model, each stating what it protects and
what it costs. (Also: `optim.freeze_embeddings`, and weight interpolation after training, models/merge.py.)"""

from __future__ import annotations

import torch


class L2SP:
    """L2-SP (Li, Grandvalet, Davoine 2018): the penalty λ‖θ − θ₀‖² toward the starting weights θ₀, added to the
    gradient as 2λ(θ − θ₀) after the contrastive gradient (and before clipping).

    Protects: every trained weight, in proportion to how far it moved, so what the starting model knew of the
    languages training never shows fades more slowly; it does not know which weights matter to them. Costs: one
    copy of the trained weights (float32) and one pass over them per step."""

    def __init__(self, parameters: list[torch.nn.Parameter], weight: float):
        self.parameters, self.weight = parameters, weight
        self.anchors = [parameter.detach().clone() for parameter in parameters]

    def apply(self) -> torch.Tensor:
        """Add the penalty's gradient to every parameter's .grad; the penalty's value (before the update)."""
        penalty = torch.zeros((), device=self.anchors[0].device if self.anchors else None)
        with torch.no_grad():
            for parameter, anchor in zip(self.parameters, self.anchors):
                moved = parameter - anchor
                penalty = penalty + moved.pow(2).sum()
                if parameter.grad is None:
                    parameter.grad = 2 * self.weight * moved
                else:
                    parameter.grad.add_(moved, alpha=2 * self.weight)
        return self.weight * penalty
