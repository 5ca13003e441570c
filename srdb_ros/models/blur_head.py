"""The blur estimator: a small head on the shared encoder's bottleneck that says how far the image moved
during the exposure (the length of the equivalent straight blur, in input pixels) and along which axis.

Each bottleneck position predicts a length and the doubled angle of the blur's axis (``cos 2a``, ``sin 2a``: an
axis has no sign), plus a confidence; a softmax over the positions weights them, so flat regions, which show
no blur, count little. The output per frame is ``(x, y, length)``: the axis scaled by the length (x to the
right, y down, ``x >= 0``) and the length, as ``<camera>/blur`` publishes it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LENGTH_UNIT = 16.0  # pixels per unit of the length channel (keeps the regression target near 1)


class BlurHead(nn.Module):
    """Bottleneck features (N x C x h x w) -> blur (N x 3: x, y, length in input pixels)."""

    def __init__(self, in_channels: int, width: int = 32) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 4, 1),
        )

    def pooled(self, features: torch.Tensor) -> torch.Tensor:
        """Confidence-weighted mean over positions: N x 3 of (length / LENGTH_UNIT, cos 2a, sin 2a) before
        normalisation (the training loss reads these)."""
        out = self.body(features).flatten(2)  # N x 4 x (h*w)
        weights = torch.softmax(out[:, 3:4], dim=2)
        values = torch.cat([F.softplus(out[:, 0:1]), out[:, 1:3]], dim=1)
        return (values * weights).sum(dim=2)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        pooled = self.pooled(features)
        length = pooled[:, 0:1] * LENGTH_UNIT
        doubled = pooled[:, 1:3] / pooled[:, 1:3].norm(dim=1, keepdim=True).clamp_min(1e-6)
        # half-angle without atan2 (an ONNX/TensorRT-friendly form): a in (-pi/2, pi/2], cos a >= 0
        cos_a = ((1 + doubled[:, 0:1]) / 2).clamp_min(0).sqrt()
        sin_a = ((1 - doubled[:, 0:1]) / 2).clamp_min(0).sqrt()
        sin_a = torch.where(doubled[:, 1:2] < 0, -sin_a, sin_a)
        return torch.cat([length * cos_a, length * sin_a, length], dim=1)
