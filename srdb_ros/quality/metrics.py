"""Image quality metrics, in one place for training validation, `srdb score` and `srdb evaluate`.

Conventions (as the deblurring and SR literature report them)
- Deblur: PSNR and SSIM on RGB, whole frame, 8-bit range.
- x4 SR: PSNR and SSIM on the Y channel (ITU-R BT.601, as MATLAB ``rgb2ycbcr``) with a border of ``scale``
  pixels cropped, 8-bit range.
- SSIM: Wang et al. 2004, 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, valid region only, mean over
  channels.
Inputs are HxW or HxWxC arrays, float in [0, 1] or uint8/uint16 (scaled to [0, 1] first).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core.imaging import FULL_RANGE, to_unit


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """HxWx3 RGB in [0, 1] -> Y in [16/255, 235/255] (BT.601, MATLAB rgb2ycbcr)."""
    return (16.0 + img[..., 0] * 65.481 + img[..., 1] * 128.553 + img[..., 2] * 24.966) / 255.0


def prepare(img: np.ndarray, y_channel: bool = False, border: int = 0) -> np.ndarray:
    floating = np.issubdtype(img.dtype, np.floating)  # floats are scored as given (not clipped)
    out = img.astype(np.float64) if floating else to_unit(img, FULL_RANGE, dtype=np.float64)
    if y_channel and out.ndim == 3 and out.shape[2] == 3:
        out = rgb_to_y(out)
    elif out.ndim == 3 and out.shape[2] == 1:
        out = out[..., 0]
    if border:
        out = out[border:-border, border:-border]
    return out


def psnr(a: np.ndarray, b: np.ndarray, y_channel: bool = False, border: int = 0) -> float:
    """PSNR in dB on the 8-bit scale (inf for identical images)."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    x, y = prepare(a, y_channel, border), prepare(b, y_channel, border)
    mse = np.mean(((x - y) * 255.0) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


def _ssim_channel(x: np.ndarray, y: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    kernel = cv2.getGaussianKernel(11, 1.5)
    window = kernel @ kernel.T
    mu_x = cv2.filter2D(x, -1, window)[5:-5, 5:-5]
    mu_y = cv2.filter2D(y, -1, window)[5:-5, 5:-5]
    sxx = cv2.filter2D(x * x, -1, window)[5:-5, 5:-5] - mu_x**2
    syy = cv2.filter2D(y * y, -1, window)[5:-5, 5:-5] - mu_y**2
    sxy = cv2.filter2D(x * y, -1, window)[5:-5, 5:-5] - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return float(ssim_map.mean())


def ssim(a: np.ndarray, b: np.ndarray, y_channel: bool = False, border: int = 0) -> float:
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    x, y = prepare(a, y_channel, border) * 255.0, prepare(b, y_channel, border) * 255.0
    if min(x.shape[:2]) < 11:
        raise ValueError("SSIM needs images of at least 11x11 pixels (after any border crop)")
    if x.ndim == 2:
        return _ssim_channel(x, y)
    return float(np.mean([_ssim_channel(x[..., c], y[..., c]) for c in range(x.shape[2])]))


def quality(output: np.ndarray, target: np.ndarray, task: str, scale: int = 4) -> dict[str, float]:
    """PSNR and SSIM by the task's convention (``deblur``: RGB; ``sr``: Y with a ``scale``-pixel border)."""
    if task == "sr":
        return {"psnr": psnr(output, target, True, scale), "ssim": ssim(output, target, True, scale)}
    return {"psnr": psnr(output, target), "ssim": ssim(output, target)}
