"""Per-stage training objectives as modules (so DistributedDataParallel can wrap them).

Each ``forward(batch)`` returns ``(loss, logs)``; ``logs`` holds floats for the metrics CSV.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models import SRDeblurNet
from ..models.blur_head import LENGTH_UNIT
from .dann import DomainClassifier, domain_loss
from .losses import FeatureAdapter, deblur_loss, distillation_loss, sr_loss


def _scalar(t: torch.Tensor) -> float:
    return float(t.detach())


def feature_channels(model: SRDeblurNet) -> list[int]:
    """Channels of the encoder features exposed by ``EncoderFeatures.domain_features`` (skip1, bottleneck)."""
    b = model.config.base_channels
    return [b, 4 * b]


class Phase1Objective(nn.Module):
    """Deblurring with the shared encoder (SR branch unused)."""

    def __init__(self, model: SRDeblurNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        blurred, sharp = batch["deblur"]
        out = self.model(blurred, "deblur", multi_scale=True)
        loss = deblur_loss(out.deblur, sharp)
        return loss, {"loss_deblur": _scalar(loss)}


class Phase2Objective(nn.Module):
    """SR branch (fitting conv + SPAN) on the frozen encoder's features."""

    def __init__(self, model: SRDeblurNet) -> None:
        super().__init__()
        self.model = model
        model.encoder.requires_grad_(False)
        model.decoder.requires_grad_(False)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        lr, hr = batch["sr"]
        self.model.encoder.eval()
        with torch.no_grad():
            feats = self.model.encode(lr, "sr")
        sr, _ = self.model.sr_head(feats)
        loss = sr_loss(sr, hr)
        return loss, {"loss_sr": _scalar(loss)}


class BlurHeadObjective(nn.Module):
    """The blur estimator on the frozen network: L1 on the length (in units of ``LENGTH_UNIT``) plus the squared
    error of the doubled-angle axis, whose target is scaled by the kernel's elongation (a round blur has no
    axis to learn)."""

    def __init__(self, model: SRDeblurNet) -> None:
        super().__init__()
        self.model = model
        model.requires_grad_(False)
        self.head = model.blur_head if model.blur_head is not None else model.add_blur_head()
        self.head.requires_grad_(True)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        blurred, target = batch["blur"]
        self.model.encoder.eval()
        with torch.no_grad():
            feats = self.model.encode(blurred, "sr")
        pooled = self.head.pooled(feats.bottleneck)
        length = F.l1_loss(pooled[:, 0], target[:, 0] / LENGTH_UNIT)
        axis = F.mse_loss(pooled[:, 1:3], target[:, 1:3])
        error_px = (pooled[:, 0] * LENGTH_UNIT - target[:, 0]).abs().mean()
        return length + axis, {
            "loss_length": _scalar(length),
            "loss_axis": _scalar(axis),
            "length_err_px": _scalar(error_px),
        }


class StandaloneSRObjective(nn.Module):
    """A plain SPAN on the low-resolution frame (the single-task baseline of Fig. 9)."""

    def __init__(self, span: nn.Module) -> None:
        super().__init__()
        self.span = span

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        lr, hr = batch["sr"]
        loss = sr_loss(self.span(lr), hr)
        return loss, {"loss_sr": _scalar(loss)}


class DANNObjective(nn.Module):
    """Both tasks on labelled EO data + domain classifiers (through gradient reversal) on EO vs unlabelled IR.

    One classifier per task looks at the encoder features that task uses: the bottleneck for deblurring
    (full-resolution frames) and the full-resolution skip feature for SR (low-resolution frames).
    """

    def __init__(self, model: SRDeblurNet, grl_coeff: float = 1.0, domain_weight: float = 1.0) -> None:
        super().__init__()
        self.model = model
        skip_ch, bottleneck_ch = feature_channels(model)
        self.classifiers = nn.ModuleDict(
            {
                "deblur": DomainClassifier(bottleneck_ch, coeff=grl_coeff),
                "sr": DomainClassifier(skip_ch, coeff=grl_coeff),
            }
        )
        self.domain_weight = domain_weight

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        blurred, sharp = batch["deblur"]
        lr, hr = batch["sr"]
        out_d = self.model(blurred, "deblur", multi_scale=True, return_features=True)
        out_s = self.model(lr, "sr", return_features=True)
        loss_d = deblur_loss(out_d.deblur, sharp)
        loss_s = sr_loss(out_s.sr, hr)
        if self.domain_weight == 0:  # a plain ground-truth fine-tune of both tasks: no domain term to compute
            return loss_d + loss_s, {"loss_deblur": _scalar(loss_d), "loss_sr": _scalar(loss_s)}
        target = batch["target"]
        target_lr = F.interpolate(
            target, scale_factor=1 / self.model.upscale, mode="bicubic", antialias=True, align_corners=False
        ).clamp(0, 1)
        tgt_d = self.model.encode(target, "deblur")
        tgt_s = self.model.encode(target_lr, "sr")
        dom_d, acc_d = domain_loss(
            self.classifiers["deblur"](out_d.features.bottleneck), self.classifiers["deblur"](tgt_d.bottleneck)
        )
        dom_s, acc_s = domain_loss(self.classifiers["sr"](out_s.features.skip1), self.classifiers["sr"](tgt_s.skip1))
        loss = loss_d + loss_s + self.domain_weight * (dom_d + dom_s)
        return loss, {
            "loss_deblur": _scalar(loss_d),
            "loss_sr": _scalar(loss_s),
            "loss_domain": _scalar(dom_d + dom_s),
            "domain_acc_deblur": acc_d,
            "domain_acc_sr": acc_s,
        }


class DistillObjective(nn.Module):
    """Teacher -> student: feature + pseudo + GT loss per task, plain sum (DIPNet-style)."""

    def __init__(self, student: SRDeblurNet, teacher: SRDeblurNet) -> None:
        super().__init__()
        self.student = student
        self.teacher = teacher.eval().requires_grad_(False)
        self.adapter = FeatureAdapter(feature_channels(student), feature_channels(teacher))

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        blurred, sharp = batch["deblur"]
        lr, hr = batch["sr"]
        with torch.no_grad():
            t_d = self.teacher(blurred, "deblur", multi_scale=True, return_features=True)
            t_s = self.teacher(lr, "sr", return_features=True)
        s_d = self.student(blurred, "deblur", multi_scale=True, return_features=True)
        s_s = self.student(lr, "sr", return_features=True)
        d = distillation_loss(
            self.adapter(s_d.features.domain_features()),
            t_d.features.domain_features(),
            s_d.deblur,
            t_d.deblur,
            deblur_loss(s_d.deblur, sharp),
        )
        s = distillation_loss(
            self.adapter(s_s.features.domain_features()),
            t_s.features.domain_features(),
            s_s.sr,
            t_s.sr,
            sr_loss(s_s.sr, hr),
        )
        loss = d["total"] + s["total"]
        logs = {f"deblur_{k}": _scalar(v) for k, v in d.items()}
        logs.update({f"sr_{k}": _scalar(v) for k, v in s.items()})
        return loss, logs
