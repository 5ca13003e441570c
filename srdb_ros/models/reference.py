"""Plain re-statements of the official MIMO-UNet and SPAN forwards, used only as the speed reference.

They run as the official code runs: MIMO-UNet computes all three output scales with ``F.interpolate``; SPAN's
Conv3XC blocks re-parameterise on every eval forward. Built from the same blocks as the project's modules.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .mimo_unet import MIMOUNetDecoder, MIMOUNetEncoder
from .span import SPAN, Conv3XC


class ReferenceMIMOUNet(nn.Module):
    """Official MIMO-UNet forward (three outputs, interpolate-based resampling)."""

    def __init__(self, base_channels: int = 16, num_res: int = 8) -> None:
        super().__init__()
        self.enc = MIMOUNetEncoder(base_channels, num_res)
        self.dec = MIMOUNetDecoder(base_channels, num_res)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        e, d = self.enc, self.dec
        x_2 = F.interpolate(x, scale_factor=0.5)
        x_4 = F.interpolate(x_2, scale_factor=0.5)
        z2, z4 = e.SCM2(x_2), e.SCM1(x_4)
        outputs = []
        res1 = e.Encoder[0](e.feat_extract[0](x))
        z = e.FAM2(e.feat_extract[1](res1), z2)
        res2 = e.Encoder[1](z)
        z = e.FAM1(e.feat_extract[2](res2), z4)
        z = e.Encoder[2](z)
        z12 = F.interpolate(res1, scale_factor=0.5)
        z21 = F.interpolate(res2, scale_factor=2)
        z42 = F.interpolate(z, scale_factor=2)
        z41 = F.interpolate(z42, scale_factor=2)
        res2 = e.AFFs[1](z12, res2, z42)
        res1 = e.AFFs[0](res1, z21, z41)
        z = d.Decoder[0](z)
        outputs.append(d.ConvsOut[0](z) + x_4)
        z = d.Convs[0](torch.cat([d.feat_extract[0](z), res2], dim=1))
        z = d.Decoder[1](z)
        outputs.append(d.ConvsOut[1](z) + x_2)
        z = d.Convs[1](torch.cat([d.feat_extract[1](z), res1], dim=1))
        z = d.Decoder[2](z)
        outputs.append(d.feat_extract[2](z) + x)
        return outputs


class _ReparamEveryCall(Conv3XC):
    """Conv3XC as the official code runs it in eval mode: fuse the kernel, then convolve, on every call."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)
        self.update_params()
        out = self.eval_conv(x)
        return F.leaky_relu(out, negative_slope=0.05) if self.has_relu else out


def reference_span(feature_channels: int = 48, upscale: int = 4) -> SPAN:
    span = SPAN(feature_channels=feature_channels, upscale=upscale)
    for module in span.modules():
        if type(module) is Conv3XC:
            module.__class__ = _ReparamEveryCall
    return span


class ReferencePipeline(nn.Module):
    """What the reference code needs for each of our tasks.

    ``deblur``: MIMO-UNet on the frame. ``sr`` and ``both``: MIMO-UNet then SPAN on the low-resolution frame
    (two standalone models produce what the integrated model produces in one pass: a sharp x4 frame and,
    on the way, the deblurred low-resolution frame).
    """

    def __init__(self, base_channels: int = 16, span_channels: int = 48) -> None:
        super().__init__()
        self.mimo = ReferenceMIMOUNet(base_channels)
        self.span = reference_span(span_channels)

    def forward(self, x: torch.Tensor, task: str) -> torch.Tensor:
        deblurred = self.mimo(x)[-1]
        return deblurred if task == "deblur" else self.span(deblurred)
