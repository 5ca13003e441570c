"""Pixel values: the one rule that maps frames to [0, 1] (16-bit thermal through gain control) and the one
bicubic resize (MATLAB ``imresize``'s antialiased kernel) used by training data, scoring and evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AGC_MODES = ("percentile", "fixed", "full")


@dataclass(frozen=True)
class AGCConfig:
    """Automatic gain control for 16-bit thermal frames."""

    mode: str = "percentile"
    low_percentile: float = 1.0
    high_percentile: float = 99.0
    fixed_min: float = 0.0
    fixed_max: float = 65535.0

    def __post_init__(self) -> None:
        if self.mode not in AGC_MODES:
            raise ValueError(f"agc mode must be one of {AGC_MODES}, got {self.mode!r}")
        if not 0.0 <= self.low_percentile < self.high_percentile <= 100.0:
            raise ValueError("agc percentiles must satisfy 0 <= low < high <= 100")
        if not self.fixed_min < self.fixed_max:
            raise ValueError("agc fixed_min must be below fixed_max")

    def range_for(self, image: np.ndarray) -> tuple[float, float]:
        """The values mapped to 0 and 1 for this frame (16-bit counts, or 32FC1 units such as kelvin; ``full`` is
        0-65535 for counts and the frame's finite minimum-maximum for floats)."""
        floating = np.issubdtype(image.dtype, np.floating)
        if self.mode == "fixed":
            return float(self.fixed_min), float(self.fixed_max)
        if self.mode == "full" and not floating:
            return 0.0, 65535.0
        finite = image[np.isfinite(image)] if floating else image
        if finite.size == 0:
            return 0.0, 1.0
        if self.mode == "full":
            lo, hi = float(finite.min()), float(finite.max())
        else:
            lo, hi = (float(v) for v in np.percentile(finite, [self.low_percentile, self.high_percentile]))
        window = 1.0 if not floating else max(1e-6, abs(lo) * 1e-6)
        if hi - lo < window:  # flat frame: keep a small window so the mapping stays invertible
            hi = lo + window
        return lo, hi


FULL_RANGE = AGCConfig(mode="full")


def value_range(
    image: np.ndarray,
    agc: AGCConfig | None = None,
    reference: np.ndarray | None = None,
    radiometric: bool | None = None,
):
    """(value mapped to 0, value mapped to 1) of a frame: 0-255 for uint8; gain control for radiometric frames
    (uint16 always, floats when ``radiometric``, e.g. 32FC1 temperatures), computed on ``reference`` when given
    (e.g. the ground truth of an output); 0-1 for other floats."""
    if image.dtype == np.uint8:
        return 0.0, 255.0
    floating = np.issubdtype(image.dtype, np.floating)
    if image.dtype == np.uint16 or (floating and radiometric):
        return (agc or AGCConfig()).range_for(reference if reference is not None else image)
    if floating:
        return 0.0, 1.0
    raise ValueError(f"unsupported image dtype {image.dtype}; use uint8, uint16 or float")


def to_unit(
    image: np.ndarray, agc: AGCConfig | None = None, reference: np.ndarray | None = None, dtype=np.float32
) -> np.ndarray:
    """A frame as floats in [0, 1] by :func:`value_range` (same shape)."""
    lo, hi = value_range(image, agc, reference)
    out = image.astype(dtype)
    if (lo, hi) != (0.0, 1.0):
        out = (out - lo) * (1.0 / (hi - lo))
    return np.clip(out, 0.0, 1.0)


def bicubic_resize(x, scale: float):
    """Antialiased bicubic resize (the MATLAB ``imresize`` kernel, a = -0.5), clipped to [0, 1].

    Takes a torch tensor ((N)CHW) or a NumPy HxW[xC] float image in [0, 1] and returns the same kind.
    """
    import torch
    import torch.nn.functional as F

    as_numpy = isinstance(x, np.ndarray)
    if as_numpy:
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        t = t[None, None] if t.dim() == 2 else t.permute(2, 0, 1)[None]
    else:
        t = x[None] if x.dim() == 3 else x
    out = F.interpolate(t, scale_factor=scale, mode="bicubic", antialias=scale < 1, align_corners=False).clamp(0, 1)
    if as_numpy:
        y = out[0, 0] if x.ndim == 2 else out[0].permute(1, 2, 0)
        return y.numpy().astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32)
    return out[0] if x.dim() == 3 else out


def to_unit_rgb(image: np.ndarray, order: str, reference: np.ndarray | None = None) -> np.ndarray:
    """A decoded frame (colour ``order`` rgb, bgr or mono) as float64 [0, 1], RGB (HxWx3) or grey (HxW)."""
    out = to_unit(image, reference=reference, dtype=np.float64)
    return out[:, :, ::-1] if order == "bgr" else out
