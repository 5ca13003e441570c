"""MIMO-UNet (Cho et al., ICCV 2021) as a shared encoder and a deblur decoder.

Attribute names follow the reference implementation (github chosj95/MIMO-UNet) so that its
checkpoints load with strict key checks; see :func:`srdb_ros.models.checkpoints.load_mimo_unet_reference`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class BasicConv(nn.Module):
    """Conv (or transposed conv) with optional BatchNorm and ReLU, stored as ``main``."""

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        stride: int = 1,
        bias: bool = True,
        norm: bool = False,
        relu: bool = True,
        transpose: bool = False,
    ) -> None:
        super().__init__()
        if bias and norm:
            bias = False
        layers: list[nn.Module] = []
        if transpose:
            padding = kernel_size // 2 - 1
            layers.append(nn.ConvTranspose2d(in_channel, out_channel, kernel_size, stride, padding, bias=bias))
        else:
            padding = kernel_size // 2
            layers.append(nn.Conv2d(in_channel, out_channel, kernel_size, stride, padding, bias=bias))
        if norm:
            layers.append(nn.BatchNorm2d(out_channel))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class ResBlock(nn.Module):
    """conv-ReLU-conv with an identity skip."""

    def __init__(self, in_channel: int, out_channel: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            BasicConv(in_channel, out_channel, kernel_size=3, stride=1, relu=True),
            BasicConv(out_channel, out_channel, kernel_size=3, stride=1, relu=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x) + x


class EBlock(nn.Module):
    """Encoder level: ``num_res`` residual blocks."""

    def __init__(self, out_channel: int, num_res: int = 8) -> None:
        super().__init__()
        self.layers = nn.Sequential(*[ResBlock(out_channel, out_channel) for _ in range(num_res)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class DBlock(EBlock):
    """Decoder level: ``num_res`` residual blocks (same structure as :class:`EBlock`)."""


class AFF(nn.Module):
    """Asymmetric feature fusion of the three encoder scales."""

    def __init__(self, in_channel: int, out_channel: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            BasicConv(in_channel, out_channel, kernel_size=1, stride=1, relu=True),
            BasicConv(out_channel, out_channel, kernel_size=3, stride=1, relu=False),
        )

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, x4: torch.Tensor) -> torch.Tensor:
        """The reference form: the 1x1 conv over the concatenation of the inputs, all at the output's resolution."""
        return self.conv(torch.cat([x1, x2, x4], dim=1))

    def fused(self, inputs: list[tuple[torch.Tensor, int]]) -> torch.Tensor:
        """:meth:`forward` on ``inputs`` given as (features, nearest up-scaling factor to the output's resolution),
        in concatenation order, without making the upsampled concatenation: the 1x1 conv is split per input and
        applied before the nearest upsampling (the two commute), coarsest input first, upsampling the running sum."""
        squeeze = self.conv[0].main[0]
        weights = squeeze.weight.split([x.shape[1] for x, _ in inputs], dim=1)
        y, factor = None, 0
        for i in sorted(range(len(inputs)), key=lambda i: -inputs[i][1]):
            x, f = inputs[i]
            if y is None:
                y = F.conv2d(x, weights[i], squeeze.bias)
            else:
                if f != factor:
                    y = F.interpolate(y, scale_factor=float(factor // f), mode="nearest")
                y = y + F.conv2d(x, weights[i])
            factor = f
        if factor != 1:
            y = F.interpolate(y, scale_factor=float(factor), mode="nearest")
        return self.conv[1](F.relu(y))


class SCM(nn.Module):
    """Shallow convolutional module on a downsampled copy of the input."""

    def __init__(self, out_plane: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            BasicConv(3, out_plane // 4, kernel_size=3, stride=1, relu=True),
            BasicConv(out_plane // 4, out_plane // 2, kernel_size=1, stride=1, relu=True),
            BasicConv(out_plane // 2, out_plane // 2, kernel_size=3, stride=1, relu=True),
            BasicConv(out_plane // 2, out_plane - 3, kernel_size=1, stride=1, relu=True),
        )
        self.conv = BasicConv(out_plane, out_plane, kernel_size=1, stride=1, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([x, self.main(x)], dim=1))


class FAM(nn.Module):
    """Feature attention module: ``x1 + conv(x1 * x2)``."""

    def __init__(self, channel: int) -> None:
        super().__init__()
        self.merge = BasicConv(channel, channel, kernel_size=3, stride=1, relu=False)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        return x1 + self.merge(x1 * x2)


def downsample2(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour x0.5, identical to ``F.interpolate(x, scale_factor=0.5)`` but export friendly."""
    return x[:, :, ::2, ::2]


def upsample2(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour x2, as ``F.interpolate(x, scale_factor=2)`` in the reference."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


@dataclass
class EncoderFeatures:
    """What the shared encoder hands on: AFF-fused skips and the bottleneck, plus the image pyramid."""

    skip1: torch.Tensor  # full resolution, base channels (AFF-fused) -> deblur decoder and SR fitting conv
    skip2: torch.Tensor | None  # 1/2 resolution, 2*base channels (AFF-fused); None when only SR is wanted
    bottleneck: torch.Tensor  # 1/4 resolution, 4*base channels
    image: torch.Tensor
    image_2: torch.Tensor
    image_4: torch.Tensor

    def select(self, index: torch.Tensor) -> EncoderFeatures:
        """The features of some frames of the batch (a boolean mask or indices)."""
        return EncoderFeatures(
            *(None if t is None else t[index] for t in (self.skip1, self.skip2, self.bottleneck)),
            self.image[index],
            self.image_2[index],
            self.image_4[index],
        )

    def domain_features(self) -> list[torch.Tensor]:
        """Feature maps the domain classifier and the distillation feature loss look at."""
        return [self.skip1, self.bottleneck]


class MIMOUNetEncoder(nn.Module):
    """Encoder half of MIMO-UNet: SCM, feature extraction, EBlocks, FAM and both AFFs."""

    fused_aff = True  # False: the AFFs take the reference's upsampled concatenation (`srdb bench` times both)

    def __init__(self, base_channels: int = 32, num_res: int = 8) -> None:
        super().__init__()
        b = base_channels
        self.Encoder = nn.ModuleList([EBlock(b, num_res), EBlock(2 * b, num_res), EBlock(4 * b, num_res)])
        self.feat_extract = nn.ModuleList(
            [
                BasicConv(3, b, kernel_size=3, relu=True, stride=1),
                BasicConv(b, 2 * b, kernel_size=3, relu=True, stride=2),
                BasicConv(2 * b, 4 * b, kernel_size=3, relu=True, stride=2),
            ]
        )
        self.AFFs = nn.ModuleList([AFF(7 * b, b), AFF(7 * b, 2 * b)])
        self.FAM1 = FAM(4 * b)
        self.SCM1 = SCM(4 * b)
        self.FAM2 = FAM(2 * b)
        self.SCM2 = SCM(2 * b)

    def forward(self, x: torch.Tensor, need_skip2: bool = True) -> EncoderFeatures:
        x_2 = downsample2(x)
        x_4 = downsample2(x_2)
        z2 = self.SCM2(x_2)
        z4 = self.SCM1(x_4)
        res1 = self.Encoder[0](self.feat_extract[0](x))
        z = self.FAM2(self.feat_extract[1](res1), z2)
        res2 = self.Encoder[1](z)
        z = self.FAM1(self.feat_extract[2](res2), z4)
        z = self.Encoder[2](z)
        if self.fused_aff:
            skip2 = self.AFFs[1].fused([(downsample2(res1), 1), (res2, 1), (z, 2)]) if need_skip2 else None
            skip1 = self.AFFs[0].fused([(res1, 1), (res2, 2), (z, 4)])
        else:
            z42 = upsample2(z)
            skip2 = self.AFFs[1](downsample2(res1), res2, z42) if need_skip2 else None
            skip1 = self.AFFs[0](res1, upsample2(res2), upsample2(z42))
        return EncoderFeatures(skip1, skip2, z, x, x_2, x_4)


class MIMOUNetDecoder(nn.Module):
    """Decoder half of MIMO-UNet: DBlocks, transposed convs, outputs at 1/4, 1/2 and full scale."""

    def __init__(self, base_channels: int = 32, num_res: int = 8) -> None:
        super().__init__()
        b = base_channels
        self.feat_extract = nn.ModuleList(
            [
                BasicConv(4 * b, 2 * b, kernel_size=4, relu=True, stride=2, transpose=True),
                BasicConv(2 * b, b, kernel_size=4, relu=True, stride=2, transpose=True),
                BasicConv(b, 3, kernel_size=3, relu=False, stride=1),
            ]
        )
        self.Decoder = nn.ModuleList([DBlock(4 * b, num_res), DBlock(2 * b, num_res), DBlock(b, num_res)])
        self.Convs = nn.ModuleList(
            [
                BasicConv(4 * b, 2 * b, kernel_size=1, relu=True, stride=1),
                BasicConv(2 * b, b, kernel_size=1, relu=True, stride=1),
            ]
        )
        self.ConvsOut = nn.ModuleList(
            [
                BasicConv(4 * b, 3, kernel_size=3, relu=False, stride=1),
                BasicConv(2 * b, 3, kernel_size=3, relu=False, stride=1),
            ]
        )

    def forward(self, feats: EncoderFeatures, multi_scale: bool = False) -> list[torch.Tensor]:
        """Return ``[out_1/4, out_1/2, out_full]`` when ``multi_scale``, else ``[out_full]``."""
        if feats.skip2 is None:
            raise ValueError("the deblur decoder needs the encoder's 1/2-scale skip (need_skip2=True)")
        outputs: list[torch.Tensor] = []
        z = self.Decoder[0](feats.bottleneck)
        if multi_scale:
            outputs.append(self.ConvsOut[0](z) + feats.image_4)
        z = self.feat_extract[0](z)
        z = self.Decoder[1](self.Convs[0](torch.cat([z, feats.skip2], dim=1)))
        if multi_scale:
            outputs.append(self.ConvsOut[1](z) + feats.image_2)
        z = self.feat_extract[1](z)
        z = self.Decoder[2](self.Convs[1](torch.cat([z, feats.skip1], dim=1)))
        outputs.append(self.feat_extract[2](z) + feats.image)
        return outputs


# Reference key layout: the official MIMOUNet keeps encoder and decoder convs in one ``feat_extract`` list.
ENCODER_FEAT_EXTRACT = {0: 0, 1: 1, 2: 2}
DECODER_FEAT_EXTRACT = {3: 0, 4: 1, 5: 2}
