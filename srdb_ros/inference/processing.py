"""Pre/post-processing shared by every backend: numpy images <-> normalised NCHW float32 arrays.

Rules
- uint8 images map to [0, 1] by /255; float images are taken as [0, 1] and clipped, unless radiometric.
- uint16 (thermal) and radiometric float (32FC1 temperature) images go through automatic gain control:
  ``percentile`` stretches the [low, high] percentiles of the frame to [0, 1]; ``fixed`` uses a given
  [min, max] range; ``full`` uses [0, 65535] (a float frame's finite min-max). Outputs are mapped back
  through the same range, so radiometric counts are kept. Non-finite values (invalid pixels of a 32FC1
  frame) enter the network as 0.
- HxW and HxWx1 are one-channel; HxWx3 is colour in ``rgb`` or ``bgr`` order (the network sees RGB).
- Sides are padded (edge replicate) to the network's multiple and outputs are cropped back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..core.imaging import AGC_MODES, AGCConfig, value_range

__all__ = ["AGC_MODES", "AGCConfig", "FrameLayout", "array_to_image", "crop_array", "image_to_array", "pad_array"]


@dataclass(frozen=True)
class FrameLayout:
    """How to turn a network output back into the caller's image."""

    dtype: np.dtype
    shape: tuple[int, ...]  # original H, W[, C]
    color_order: str  # "rgb", "bgr" or "mono"
    value_range: tuple[float, float]  # input value mapped to 0 and to 1

    @property
    def channels(self) -> int:
        return 1 if len(self.shape) == 2 else self.shape[2]


def image_channels(image: np.ndarray) -> int:
    """The channel count of an HxW, HxWx1 or HxWx3 frame; ValueError for other shapes and empty frames."""
    if image.ndim == 3 and image.shape[2] not in (1, 3) or image.ndim not in (2, 3):
        raise ValueError(f"expected an HxW, HxWx1 or HxWx3 image, got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"empty image of shape {image.shape}")
    return 1 if image.ndim == 2 else image.shape[2]


def image_to_array(
    image: np.ndarray, color_order: str = "rgb", agc: AGCConfig | None = None, radiometric: bool | None = None
) -> tuple[np.ndarray, FrameLayout]:
    """HxW[xC] uint8/uint16/float image -> 1xCxHxW float32 in [0, 1] (RGB order) and its layout."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a numpy array, got {type(image).__name__}")
    channels = image_channels(image)
    order = "mono" if channels == 1 else color_order
    if order not in ("rgb", "bgr", "mono"):
        raise ValueError(f"color_order must be 'rgb' or 'bgr', got {color_order!r}")

    lo, hi = value_range(image, agc, radiometric=radiometric)

    arr = image.astype(np.float32)
    if (lo, hi) != (0.0, 1.0):
        arr = (arr - lo) * np.float32(1.0 / (hi - lo))
    arr = np.clip(arr, 0.0, 1.0)
    if image.dtype.kind == "f":
        arr = np.nan_to_num(arr, nan=0.0)
    arr = arr.reshape(image.shape[0], image.shape[1], channels)
    if order == "bgr":
        arr = arr[:, :, ::-1]
    nchw = np.ascontiguousarray(arr.transpose(2, 0, 1)[None])
    return nchw, FrameLayout(image.dtype, image.shape, order, (lo, hi))


def array_to_image(array: np.ndarray, layout: FrameLayout, scale: int = 1) -> np.ndarray:
    """1xCxHxW float output -> image in the layout's dtype, channel order and (scaled) shape."""
    arr = np.asarray(array, dtype=np.float32)[0]
    if arr.shape[0] != layout.channels:
        arr = arr.mean(axis=0, keepdims=True) if layout.channels == 1 else np.repeat(arr, 3, axis=0)
    arr = arr.transpose(1, 2, 0)
    if layout.color_order == "bgr":
        arr = arr[:, :, ::-1]
    arr = np.clip(arr, 0.0, 1.0)
    lo, hi = layout.value_range
    if layout.dtype == np.uint8:
        out = np.rint(arr * 255.0).astype(np.uint8)
    elif layout.dtype == np.uint16:
        out = np.clip(np.rint(arr * (hi - lo) + lo), 0, 65535).astype(np.uint16)
    else:
        out = (arr * (hi - lo) + lo).astype(layout.dtype)
    h, w = layout.shape[0] * scale, layout.shape[1] * scale
    if len(layout.shape) == 2:
        return np.ascontiguousarray(out.reshape(h, w))
    return np.ascontiguousarray(out.reshape(h, w, layout.channels))


def pad_array(x: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Edge-pad the bottom/right of an NCHW array to a multiple; returns the array and the original (H, W)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="edge")
    return x, (h, w)


def crop_array(y: np.ndarray, size: tuple[int, int], scale: int = 1) -> np.ndarray:
    return y[..., : size[0] * scale, : size[1] * scale]


MIN_TILE_STEP = 32  # tile - 2 * overlap: smaller steps make tiling degenerate (thousands of tiles)


def run_tiled(
    fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, tile: int, overlap: int, scale: int, multiple: int
) -> np.ndarray:
    """Run ``fn`` on overlapping tiles of an NCHW array and stitch the outputs (each tile keeps its centre).

    ``tile`` and ``overlap`` are input pixels; ``scale`` is the output/input size ratio of ``fn``.
    """
    if tile <= 2 * overlap:
        raise ValueError("tile size must exceed twice the overlap")
    n, c, h, w = x.shape
    if h <= tile and w <= tile:
        return fn(x)
    out: np.ndarray | None = None
    step = tile - 2 * overlap
    for y0 in range(0, h, step):
        for x0 in range(0, w, step):
            ys, xs = max(0, y0 - overlap), max(0, x0 - overlap)
            ye, xe = min(h, y0 + step + overlap), min(w, x0 + step + overlap)
            patch, size = pad_array(x[:, :, ys:ye, xs:xe], multiple)
            y = crop_array(fn(patch), size, scale)
            if out is None:
                out = np.empty((n, y.shape[1], h * scale, w * scale), dtype=y.dtype)
            cy0, cx0 = y0 - ys, x0 - xs
            cy1, cx1 = cy0 + min(step, h - y0), cx0 + min(step, w - x0)
            out[:, :, y0 * scale : (y0 + cy1 - cy0) * scale, x0 * scale : (x0 + cx1 - cx0) * scale] = y[
                :, :, cy0 * scale : cy1 * scale, cx0 * scale : cx1 * scale
            ]
    assert out is not None
    return out
