"""SPAN x4 (Wan et al., CVPRW 2024): swift parameter-free attention network.

Attribute names follow the reference (github hongyuanyu/SPAN, ``basicsr/archs/span_arch.py``) so BasicSR
checkpoints load strictly. Unlike the reference, which re-parameterises every Conv3XC on every eval
forward, the fused 3x3 kernel here is computed once by :meth:`Conv3XC.switch_to_deploy`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

RGB_MEAN = (0.4488, 0.4371, 0.4040)


class Conv3XC(nn.Module):
    """1x1 -> 3x3 -> 1x1 expansion plus a 1x1 skip, re-parameterisable into one 3x3 conv (``eval_conv``).

    Training form holds ``sk``, ``conv`` and ``eval_conv`` (the fused copy, not trained, kept for the
    reference's key layout and parameter count). Deploy form holds ``eval_conv`` only.
    """

    def __init__(self, c_in: int, c_out: int, gain1: int = 1, s: int = 1, bias: bool = True, relu: bool = False):
        super().__init__()
        self.stride = s
        self.has_relu = relu
        self.deploy = False
        self.sk = nn.Conv2d(c_in, c_out, kernel_size=1, padding=0, stride=s, bias=bias)
        self.conv = nn.Sequential(
            nn.Conv2d(c_in, c_in * gain1, kernel_size=1, padding=0, bias=bias),
            nn.Conv2d(c_in * gain1, c_out * gain1, kernel_size=3, stride=s, padding=0, bias=bias),
            nn.Conv2d(c_out * gain1, c_out, kernel_size=1, padding=0, bias=bias),
        )
        self.eval_conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, stride=s, bias=bias)
        self.eval_conv.requires_grad_(False)
        self.update_params()

    @torch.no_grad()
    def fused_kernel(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The single 3x3 kernel and bias equal to the three-branch training form."""
        w1, b1 = self.conv[0].weight, self.conv[0].bias
        w2, b2 = self.conv[1].weight, self.conv[1].bias
        w3, b3 = self.conv[2].weight, self.conv[2].bias
        # (1x1 then 3x3): w[o, i] = sum_m w2[o, m] * w1[m, i]; likewise for the trailing 1x1.
        w = torch.einsum("omhw,mi->oihw", w2, w1[:, :, 0, 0])
        w = torch.einsum("om,mihw->oihw", w3[:, :, 0, 0], w)
        b = (w2 * b1.reshape(1, -1, 1, 1)).sum((1, 2, 3)) + b2
        b = w3[:, :, 0, 0] @ b + b3
        w = w + F.pad(self.sk.weight, [1, 1, 1, 1])
        b = b + self.sk.bias
        return w, b

    @torch.no_grad()
    def update_params(self) -> None:
        """Refresh ``eval_conv`` from the training branches."""
        if self.deploy:
            return
        w, b = self.fused_kernel()
        self.eval_conv.weight.copy_(w)
        self.eval_conv.bias.copy_(b)

    def switch_to_deploy(self) -> None:
        """Fuse once and drop the training branches."""
        if self.deploy:
            return
        self.update_params()
        del self.sk
        del self.conv
        self.deploy = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.deploy:
            out = self.eval_conv(x)
        else:
            out = self.conv(F.pad(x, (1, 1, 1, 1), "constant", 0)) + self.sk(x)
        if self.has_relu:
            out = F.leaky_relu(out, negative_slope=0.05)
        return out


class SPAB(nn.Module):
    """Swift parameter-free attention block."""

    def __init__(self, in_channels: int, mid_channels: int | None = None, out_channels: int | None = None):
        super().__init__()
        mid_channels = mid_channels or in_channels
        out_channels = out_channels or in_channels
        self.in_channels = in_channels
        self.c1_r = Conv3XC(in_channels, mid_channels, gain1=2, s=1)
        self.c2_r = Conv3XC(mid_channels, mid_channels, gain1=2, s=1)
        self.c3_r = Conv3XC(mid_channels, out_channels, gain1=2, s=1)
        self.act1 = nn.SiLU()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (output, SiLU(c1 output), attention map).

        The reference applies SiLU in place, so its second return value is already activated.
        """
        out1_act = self.act1(self.c1_r(x))
        out2_act = self.act1(self.c2_r(out1_act))
        out3 = self.c3_r(out2_act)
        sim_att = torch.sigmoid(out3) - 0.5
        return (out3 + x) * sim_att, out1_act, sim_att


class SPAN(nn.Module):
    """SPAN super-resolution network; input RGB-like in [0, 1], output upscaled by ``upscale``."""

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        feature_channels: int = 48,
        upscale: int = 4,
        img_range: float = 255.0,
        rgb_mean: tuple[float, float, float] = RGB_MEAN,
    ) -> None:
        super().__init__()
        self.img_range = img_range
        self.upscale = upscale
        self.register_buffer("mean", torch.tensor(rgb_mean).view(1, 3, 1, 1), persistent=False)
        fc = feature_channels
        self.conv_1 = Conv3XC(num_in_ch, fc, gain1=2, s=1)
        self.block_1 = SPAB(fc)
        self.block_2 = SPAB(fc)
        self.block_3 = SPAB(fc)
        self.block_4 = SPAB(fc)
        self.block_5 = SPAB(fc)
        self.block_6 = SPAB(fc)
        self.conv_cat = nn.Conv2d(fc * 4, fc, kernel_size=1, bias=True)
        self.conv_2 = Conv3XC(fc, fc, gain1=2, s=1)
        self.upsampler = nn.Sequential(
            nn.Conv2d(fc, num_out_ch * upscale**2, kernel_size=3, padding=1), nn.PixelShuffle(upscale)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) * self.img_range
        out_feature = self.conv_1(x)
        out_b1, _, _ = self.block_1(out_feature)
        out_b2, _, _ = self.block_2(out_b1)
        out_b3, _, _ = self.block_3(out_b2)
        out_b4, _, _ = self.block_4(out_b3)
        out_b5, _, _ = self.block_5(out_b4)
        out_b6, out_b5_2, _ = self.block_6(out_b5)
        out_b6 = self.conv_2(out_b6)
        out = self.conv_cat(torch.cat([out_feature, out_b6, out_b1, out_b5_2], 1))
        return self.upsampler(out)


def refresh_fused(model: nn.Module) -> None:
    """Recompute every training-form Conv3XC's ``eval_conv`` from its branches (after training steps)."""
    for module in model.modules():
        if isinstance(module, Conv3XC):
            module.update_params()


def switch_to_deploy(model: nn.Module) -> nn.Module:
    """Re-parameterise every Conv3XC in ``model`` in place; returns ``model``."""
    for module in model.modules():
        if isinstance(module, Conv3XC):
            module.switch_to_deploy()
    return model


@torch.no_grad()
def bilinear_span_init(span, other_scale: float = 0.001) -> None:
    """Make a training-form SPAN start as a bilinear upsampler of its 3-channel input (architecture unchanged).

    Channels 0-2 of ``conv_1`` pass the normalised input through its 1x1 skip, ``conv_cat`` forwards them, and
    the upsampler's 3x3 conv holds the bilinear sub-pixel weights (half-pixel aligned, as image resizers are),
    divided by ``img_range`` and offset by the RGB mean. Every other path into the output is scaled by
    ``other_scale``, so the remaining (random) features start as a small perturbation that training grows.
    """
    s = span.upscale
    c1 = span.conv_1
    c1.sk.weight[:3].zero_()
    c1.sk.weight[:3, :3, 0, 0] = torch.eye(3)
    c1.sk.bias[:3].zero_()
    c1.conv[2].weight[:3].zero_()
    c1.conv[2].bias[:3].zero_()
    c1.update_params()
    span.conv_cat.weight[:3].zero_()
    span.conv_cat.weight[:3, :3, 0, 0] = torch.eye(3)
    span.conv_cat.bias[:3].zero_()
    up = span.upsampler[0]
    up.weight.mul_(other_scale)
    up.weight[:, :3].zero_()
    offsets = [(2 * i - (s - 1)) / (2 * s) for i in range(s)]  # sub-pixel centre offsets in input pixels
    taps = torch.zeros(s, 3)
    for i, d in enumerate(offsets):
        taps[i, 1] = 1 - abs(d)
        taps[i, 0 if d < 0 else 2] = abs(d)
    mean = span.mean.view(-1)
    for c in range(3):
        for i in range(s):
            for j in range(s):
                out = c * s * s + i * s + j
                up.weight[out, c] = torch.outer(taps[i], taps[j]) / span.img_range
                up.bias[out] = mean[c]
