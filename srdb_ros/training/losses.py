"""Training losses: MIMO-UNet's multi-scale content + frequency loss, SR L1, DIPNet-style distillation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FFT_WEIGHT = 0.1  # MIMO-UNet paper


def pyramid(target: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Target at 1/4, 1/2, 1 (for three levels), downsampled bilinearly as MIMO-UNet's training code does."""
    out = [target]
    for _ in range(levels - 1):
        out.insert(0, F.interpolate(out[0], scale_factor=0.5, mode="bilinear", align_corners=False))
    return out


def _match(outputs: list[torch.Tensor], target: torch.Tensor) -> list[torch.Tensor]:
    targets = pyramid(target, len(outputs))
    return [
        t
        if t.shape[-2:] == o.shape[-2:]
        else F.interpolate(target, size=o.shape[-2:], mode="bilinear", align_corners=False)
        for o, t in zip(outputs, targets)
    ]


def multiscale_content_loss(outputs: list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """Sum over scales of L1(output, target at that scale)."""
    return sum(F.l1_loss(o.float(), t) for o, t in zip(outputs, _match(outputs, target)))


def frequency_loss(outputs: list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """Sum over scales of L1 between the 2-D FFTs (real and imaginary parts) of output and target."""
    return sum(
        F.l1_loss(torch.view_as_real(torch.fft.fft2(o.float())), torch.view_as_real(torch.fft.fft2(t.float())))
        for o, t in zip(outputs, _match(outputs, target))
    )


def deblur_loss(outputs: list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """MIMO-UNet's training loss: multi-scale L1 + 0.1 x multi-scale FFT L1."""
    return multiscale_content_loss(outputs, target) + FFT_WEIGHT * frequency_loss(outputs, target)


def sr_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SPAN's training loss: L1."""
    return F.l1_loss(output.float(), target)


class FeatureAdapter(nn.Module):
    """1x1 convs mapping student encoder features to the teacher's channel counts."""

    def __init__(self, student_channels: list[int], teacher_channels: list[int]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(s, t, kernel_size=1) for s, t in zip(student_channels, teacher_channels))

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        return [conv(f) for conv, f in zip(self.convs, feats)]


def distillation_loss(
    student_feats: list[torch.Tensor],
    teacher_feats: list[torch.Tensor],
    student_out: torch.Tensor | list[torch.Tensor],
    teacher_out: torch.Tensor | list[torch.Tensor],
    gt_loss: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """DIPNet-style: feature loss + pseudo (teacher output) loss + GT loss, a plain unweighted sum."""
    feature = sum(F.l1_loss(s, t.detach()) for s, t in zip(student_feats, teacher_feats))
    s_out = student_out if isinstance(student_out, list) else [student_out]
    t_out = teacher_out if isinstance(teacher_out, list) else [teacher_out]
    pseudo = sum(F.l1_loss(s, t.detach()) for s, t in zip(s_out, t_out))
    return {"feature": feature, "pseudo": pseudo, "gt": gt_loss, "total": feature + pseudo + gt_loss}
