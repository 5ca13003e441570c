"""The integrated super-resolution + deblurring network (shared MIMO-UNet encoder, deblur decoder, SPAN)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..core.contract import PAD_MULTIPLE, SCALE, TASKS
from .blur_head import BlurHead
from .mimo_unet import EncoderFeatures, MIMOUNetDecoder, MIMOUNetEncoder
from .span import SPAN, switch_to_deploy


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild an :class:`SRDeblurNet`; stored in every weight file's metadata."""

    name: str = "student"
    base_channels: int = 16
    num_res: int = 8
    span_channels: int = 48
    upscale: int = SCALE
    fit_kernel: int = 3
    deploy: bool = False
    blur_head: bool = False  # the blur estimator on the bottleneck (models.blur_head)
    # inference (eval mode) only, with the estimator: the deblur correction (output - input) fades in with the
    # estimated blur, none below fade_from_px, all of it from fade_to_px on; 0, 0 = always all of it
    fade_from_px: float = 0.0
    fade_to_px: float = 0.0

    # bounds checked before anything is allocated: a weight file's metadata must not be able to ask for gigabytes
    LIMITS = {"base_channels": (4, 128), "num_res": (1, 32), "span_channels": (8, 256), "fit_kernel": (1, 7)}

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not isinstance(self.deploy, bool) or not isinstance(self.blur_head, bool):
            raise ValueError("model config: name must be a string, deploy and blur_head booleans")
        for key, (low, high) in self.LIMITS.items():
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ValueError(f"model config: {key} must be an integer in [{low}, {high}], got {value!r}")
        if self.fit_kernel % 2 == 0:
            raise ValueError(f"model config: fit_kernel must be odd, got {self.fit_kernel}")
        if self.upscale != SCALE:
            raise ValueError(f"model config: upscale must be {SCALE} (the network's x{SCALE} SR), got {self.upscale!r}")
        fade = (self.fade_from_px, self.fade_to_px)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in fade):
            raise ValueError(f"model config: fade_from_px and fade_to_px must be numbers, got {fade!r}")
        if fade != (0, 0) and not (self.blur_head and 0 <= fade[0] < fade[1] <= 1000):
            raise ValueError(f"model config: a fade needs the blur estimator and 0 <= from < to <= 1000, got {fade}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**data)


CONFIGS: dict[str, ModelConfig] = {
    "teacher": ModelConfig(name="teacher", base_channels=32),
    "student": ModelConfig(name="student", base_channels=16),
}


@dataclass
class SRDeblurOutput:
    """Network outputs. ``deblur`` is ``[1/4, 1/2, full]`` in multi-scale mode, else ``[full]``; ``blur`` the
    estimator's N x 3 (x, y, length in input pixels) when the model has one."""

    deblur: list[torch.Tensor] | None = None
    sr: torch.Tensor | None = None
    blur: torch.Tensor | None = None
    features: EncoderFeatures | None = field(default=None, repr=False)
    sr_input: torch.Tensor | None = field(default=None, repr=False)


def pad_to_multiple(x: torch.Tensor, multiple: int = PAD_MULTIPLE) -> tuple[torch.Tensor, int, int]:
    """Replicate-pad the bottom/right of an NCHW tensor to a multiple; returns (padded, pad_h, pad_w)."""
    h, w = x.shape[-2:]
    pad_h = (-h) % multiple
    pad_w = (-w) % multiple
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return x, pad_h, pad_w


class SRDeblurNet(nn.Module):
    """Shared encoder -> deblur decoder, and shared encoder -> fitting conv (+ frame) -> SPAN x4.

    Inputs are NCHW in [0, 1] with 1 or 3 channels and any height/width: they are padded to a multiple
    of 4 and outputs are cropped back. One-channel (thermal) input is replicated to three channels and the
    outputs are averaged back to one channel.
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or CONFIGS["student"]
        c = self.config
        self.encoder = MIMOUNetEncoder(c.base_channels, c.num_res)
        self.decoder = MIMOUNetDecoder(c.base_channels, c.num_res)
        self.fit = nn.Conv2d(c.base_channels, 3, kernel_size=c.fit_kernel, padding=c.fit_kernel // 2)
        nn.init.zeros_(self.fit.weight)  # SPAN starts by seeing the frame itself; the correction is learned
        nn.init.zeros_(self.fit.bias)
        self.span = SPAN(3, 3, feature_channels=c.span_channels, upscale=c.upscale)
        self.blur_head = BlurHead(4 * c.base_channels) if c.blur_head else None
        if c.deploy:
            switch_to_deploy(self.span)

    def add_blur_head(self) -> BlurHead:
        """Give the model a (fresh) blur estimator, recorded in its config; returns the head."""
        self.blur_head = BlurHead(4 * self.config.base_channels)
        self.config = ModelConfig(**{**self.config.to_dict(), "blur_head": True})
        return self.blur_head

    def set_fade(self, from_px: float, to_px: float) -> None:
        """Record the fade of the deblur correction in the config (0, 0: none; see :class:`ModelConfig`)."""
        self.config = ModelConfig(**{**self.config.to_dict(), "fade_from_px": from_px, "fade_to_px": to_px})

    @property
    def upscale(self) -> int:
        return self.config.upscale

    def encode(self, x: torch.Tensor, task: str = "both") -> EncoderFeatures:
        return self.encoder(x, need_skip2=task != "sr")

    def sr_head(self, feats: EncoderFeatures) -> tuple[torch.Tensor, torch.Tensor]:
        """Fitting conv then SPAN; returns (SR output, SPAN input).

        The fitting conv maps the encoder's full-resolution skip feature (base channels) to SPAN's 3-channel
        input as a correction added to the frame, the same residual form as MIMO-UNet's own outputs
        (output = residual + input): the encoder's features carry what the frame lacks, not the frame itself.
        """
        sr_input = feats.image + self.fit(feats.skip1)
        return self.span(sr_input), sr_input

    def forward(
        self,
        x: torch.Tensor,
        task: str = "both",
        multi_scale: bool = False,
        return_features: bool = False,
        min_blur_px: float = 0.0,
    ) -> SRDeblurOutput:
        """``min_blur_px`` > 0 (a model with a blur estimator): frames whose estimated blur is shorter skip the
        deblur decoder, and their deblurred output is the input itself. In eval mode, a model whose config sets a
        fade (``fade_from_px``, ``fade_to_px``) adds only part of its correction to frames it estimates as nearly
        sharp."""
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected an N x {{1,3}} x H x W tensor, got shape {tuple(x.shape)}")
        given = x
        mono = x.shape[1] == 1
        if mono:
            x = x.expand(-1, 3, -1, -1)
        h, w = x.shape[-2:]
        x, pad_h, pad_w = pad_to_multiple(x)
        feats = self.encode(x, task)
        out = SRDeblurOutput(features=feats if return_features else None)
        if self.blur_head is not None:
            out.blur = self.blur_head(feats.bottleneck)
        if task in ("deblur", "both"):
            if min_blur_px > 0 and out.blur is not None and not multi_scale:
                deblur = [self._decode_blurred(feats, out.blur[:, 2] >= min_blur_px)]
            else:
                deblur = self.decoder(feats, multi_scale=multi_scale)
            if pad_h or pad_w:
                deblur = [_crop(d, h, w, x.shape[-2]) for d in deblur]
            out.deblur = [_to_mono(d) for d in deblur] if mono else deblur
            if out.blur is not None and self.config.fade_to_px > 0 and not self.training:
                out.deblur[-1] = self._fade(given, out.deblur[-1], out.blur[:, 2])
        if task in ("sr", "both"):
            sr, sr_input = self.sr_head(feats)
            s = self.upscale
            sr = sr[..., : h * s, : w * s]
            out.sr = _to_mono(sr) if mono else sr
            out.sr_input = sr_input if return_features else None
        return out

    def _fade(self, given: torch.Tensor, deblurred: torch.Tensor, blur_px: torch.Tensor) -> torch.Tensor:
        """The input plus the share of the correction that the estimated blur calls for (0 to 1 per frame)."""
        low, high = self.config.fade_from_px, self.config.fade_to_px
        share = ((blur_px - low) / (high - low)).clamp(0.0, 1.0).view(-1, 1, 1, 1)
        return given + share * (deblurred - given)

    def _decode_blurred(self, feats: EncoderFeatures, blurred: torch.Tensor) -> torch.Tensor:
        """The full-scale deblurred batch, decoding only the ``blurred`` frames; the others are their input."""
        if bool(blurred.all()):
            return self.decoder(feats)[-1]
        out = feats.image.clone()
        if bool(blurred.any()):
            out[blurred] = self.decoder(feats.select(blurred))[-1]
        return out

    def to_deploy(self) -> SRDeblurNet:
        """Switch SPAN to its re-parameterised form (in place) and record it in the config."""
        switch_to_deploy(self.span)
        self.config = ModelConfig(**{**self.config.to_dict(), "deploy": True})
        return self


def _crop(t: torch.Tensor, h: int, w: int, padded_h: int) -> torch.Tensor:
    """Crop a (possibly lower-scale) output of a padded input back to the unpadded extent."""
    scale = padded_h // t.shape[-2]
    return t[..., : -(-h // scale), : -(-w // scale)]


def _to_mono(t: torch.Tensor) -> torch.Tensor:
    return t.mean(dim=1, keepdim=True)


def build_model(name_or_config: str | ModelConfig | dict) -> SRDeblurNet:
    """Build a model from a config name (``teacher``/``student``), a :class:`ModelConfig` or a dict."""
    if isinstance(name_or_config, str):
        if name_or_config not in CONFIGS:
            raise ValueError(f"unknown model {name_or_config!r}; choose one of {sorted(CONFIGS)}")
        return SRDeblurNet(CONFIGS[name_or_config])
    if isinstance(name_or_config, dict):
        return SRDeblurNet(ModelConfig.from_dict(name_or_config))
    return SRDeblurNet(name_or_config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
