"""Domain-adversarial training (Ganin et al., 2016): gradient reversal and a domain classifier."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _ReverseGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coeff: float) -> torch.Tensor:
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.coeff * grad, None


class GradientReversal(nn.Module):
    """Identity forward; multiplies the gradient by ``-coeff`` backward."""

    def __init__(self, coeff: float = 1.0) -> None:
        super().__init__()
        self.coeff = coeff

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ReverseGrad.apply(x, self.coeff)


class DomainClassifier(nn.Module):
    """GRL -> two strided convs -> global average pool -> linear: one logit (source 0, target 1)."""

    def __init__(self, channels: int, hidden: int = 64, coeff: float = 1.0) -> None:
        super().__init__()
        self.grl = GradientReversal(coeff)
        self.body = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(hidden, 1),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.body(self.grl(features)).squeeze(1)


def domain_loss(source_logits: torch.Tensor, target_logits: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Binary cross-entropy (source = 0, target = 1) and the classifier's accuracy."""
    logits = torch.cat([source_logits, target_logits])
    labels = torch.cat([torch.zeros_like(source_logits), torch.ones_like(target_logits)])
    accuracy = float(((logits > 0).float() == labels).float().mean())
    return F.binary_cross_entropy_with_logits(logits, labels), accuracy
