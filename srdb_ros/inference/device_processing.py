"""Pre/post-processing as PyTorch operations on the backend's device: the same rules as
:mod:`srdb_ros.inference.processing` (the NumPy path), but the frame's bytes go to the device once, in their own
dtype (uint8/uint16, through a pinned staging buffer on CUDA), and conversion, gain control (percentiles on the
device), channel order, padding, clipping, quantisation and cropping run there; only the output image in the
input's dtype comes back.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F

from ..core.imaging import AGCConfig
from .processing import FrameLayout


def percentiles(x: torch.Tensor, qs: tuple[float, float]) -> tuple[float, float]:
    """NumPy's ``percentile`` (linear interpolation) of a flat tensor, on its device, by order statistics."""
    n = x.numel()
    out = []
    for q in qs:
        pos = q / 100.0 * (n - 1)
        lo_k = int(np.floor(pos))
        frac = pos - lo_k
        lo = x.kthvalue(lo_k + 1).values
        hi = x.kthvalue(min(lo_k + 2, n)).values if frac > 0 else lo
        out.append(float(lo + (hi - lo) * frac))
    return out[0], out[1]


class DeviceProcessor:
    """Frames in and out of a torch backend's device (one per backend: it keeps the pinned staging buffers)."""

    def __init__(self, device: torch.device, dtype: torch.dtype, multiple: int) -> None:
        self.device, self.dtype, self.multiple = device, dtype, multiple
        self.cuda = device.type == "cuda"
        self._staging: dict[tuple, torch.Tensor] = {}
        self._copied: dict[tuple, torch.cuda.Event] = {}  # the last upload from each staging buffer

    def upload(self, image: np.ndarray) -> torch.Tensor:
        """The frame on the device in its own dtype (one copy; on CUDA through a pinned buffer, asynchronously)."""
        with warnings.catch_warnings():  # a read-only view of a message buffer: it is only ever read
            warnings.simplefilter("ignore", UserWarning)
            host = torch.from_numpy(image if image.dtype != np.uint16 else image.view(np.int16))
        if not self.cuda:
            return host
        key = (tuple(image.shape), host.dtype)
        if key not in self._staging:
            self._staging[key] = torch.empty(image.shape, dtype=host.dtype, pin_memory=True)
        elif key in self._copied:
            self._copied[key].synchronize()  # the previous asynchronous upload from this buffer has finished
        staging = self._staging[key]
        staging.copy_(host)
        device_copy = staging.to(self.device, non_blocking=True)
        self._copied[key] = torch.cuda.Event()
        self._copied[key].record()
        return device_copy

    def value_range(self, t: torch.Tensor, image: np.ndarray, agc: AGCConfig, radiometric: bool | None):
        """(value mapped to 0, value mapped to 1), the rule of ``core.imaging.value_range`` computed on ``t``."""
        if image.dtype == np.uint8:
            return 0.0, 255.0
        floating = np.issubdtype(image.dtype, np.floating)
        if not (image.dtype == np.uint16 or (floating and radiometric)):
            return 0.0, 1.0
        if agc.mode == "fixed":
            return float(agc.fixed_min), float(agc.fixed_max)
        if agc.mode == "full" and not floating:
            return 0.0, 65535.0
        flat = t.reshape(-1)
        if floating:
            flat = flat[torch.isfinite(flat)]
            if flat.numel() == 0:
                return 0.0, 1.0
        if agc.mode == "full":
            lo, hi = float(flat.min()), float(flat.max())
        else:
            lo, hi = percentiles(flat, (agc.low_percentile, agc.high_percentile))
        window = max(1e-6, abs(lo) * 1e-6) if floating else 1.0
        return lo, (hi if hi - lo >= window else lo + window)

    def to_input(
        self, image: np.ndarray, color_order: str, agc: AGCConfig, radiometric: bool | None = None
    ) -> tuple[torch.Tensor, FrameLayout, tuple[int, int]]:
        """(1x3xHpxWp tensor in [0, 1], RGB, padded, in the backend's dtype; the layout; the unpadded size)."""
        if image.ndim == 3 and image.shape[2] not in (1, 3) or image.ndim not in (2, 3):
            raise ValueError(f"expected an HxW, HxWx1 or HxWx3 image, got shape {image.shape}")
        if image.shape[0] < 1 or image.shape[1] < 1:
            raise ValueError(f"empty image of shape {image.shape}")
        channels = 1 if image.ndim == 2 else image.shape[2]
        order = "mono" if channels == 1 else color_order
        t = self.upload(image)
        if image.dtype == np.uint16:
            t = t.to(torch.int32) & 0xFFFF  # uploaded as int16 bits: back to unsigned counts
        t = t.float()
        lo, hi = self.value_range(t, image, agc, radiometric)
        if (lo, hi) != (0.0, 1.0):
            t = (t - lo) * (1.0 / (hi - lo))
        t = t.clamp(0.0, 1.0)  # not in place: t may still be the caller's (read-only) buffer
        if image.dtype.kind == "f":
            t = torch.nan_to_num(t, nan=0.0)
        t = t.reshape(image.shape[0], image.shape[1], channels).permute(2, 0, 1)
        if order == "bgr":
            t = t.flip(0)
        elif channels == 1:
            t = t.expand(3, -1, -1)
        h, w = image.shape[:2]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        t = t[None]
        if ph or pw:
            t = F.pad(t, (0, pw, 0, ph), mode="replicate")
        if self.cuda:
            t = t.to(self.dtype).contiguous(memory_format=torch.channels_last)
        else:
            t = t.contiguous()
        return t, FrameLayout(image.dtype, image.shape, order, (lo, hi)), (h, w)

    def to_image(self, out: torch.Tensor, layout: FrameLayout, size: tuple[int, int], scale: int = 1) -> np.ndarray:
        """A 1xCxHxW network output -> the caller's image (layout's dtype, channel order, size x ``scale``)."""
        h, w = size[0] * scale, size[1] * scale
        y = out[0, :, :h, :w].float()
        if layout.channels == 1:
            y = y.mean(dim=0, keepdim=True)
        elif layout.color_order == "bgr":
            y = y.flip(0)
        y = y.clamp(0.0, 1.0).permute(1, 2, 0)
        lo, hi = layout.value_range
        if layout.dtype == np.uint8:
            y = torch.round(y * 255.0).to(torch.uint8)
        elif layout.dtype == np.uint16:
            y = torch.round(y * (hi - lo) + lo).clamp(0, 65535).to(torch.int32)
        else:
            y = y * (hi - lo) + lo
        arr = y.cpu().numpy()
        if layout.dtype == np.uint16:
            arr = arr.astype(np.uint16)
        elif layout.dtype.kind == "f":
            arr = arr.astype(layout.dtype, copy=False)
        shape = (h, w) if len(layout.shape) == 2 else (h, w, layout.channels)
        return np.ascontiguousarray(arr.reshape(shape))
