"""Pre/post-processing as PyTorch operations on the backend's device: the same rules as
:mod:`srdb_ros.inference.processing` (the NumPy path), but the frame's bytes go to the device once, in their own
dtype (uint8/uint16, through a pinned staging buffer on CUDA), and conversion, gain control (percentiles on the
device), channel order, padding, clipping, quantisation and cropping run there; only the output image in the
input's dtype comes back.

:class:`FramePipeline` runs a whole integer frame (pre-processing, the network, post-processing) as one function
of device tensors with no host synchronisation, so that on CUDA it is captured once as a CUDA graph and replayed.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from ..core.contract import output_tasks, split_outputs
from ..core.imaging import AGCConfig
from .processing import FrameLayout, image_channels

LOG = logging.getLogger(__name__)

Bound = torch.Tensor | float  # a value-range end: a 0-d device tensor when computed from the frame


def percentiles(
    x: torch.Tensor, qs: tuple[float, float], levels: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """NumPy's ``percentile`` (linear interpolation) of a flat tensor, as 0-d tensors on its device (order
    statistics at positions fixed by the size: no host synchronisation). With ``levels``, ``x`` holds integers in
    [0, levels) and the order statistics come from its histogram (one pass, no selection: 6.4 ms against 85 ms
    with ``kthvalue`` for a 1240x984 16-bit frame on 2 CPU threads)."""
    n = x.numel()
    if levels:
        counts = torch.zeros(levels, dtype=torch.int64, device=x.device)
        counts.scatter_add_(0, x.long(), torch.ones(1, dtype=torch.int64, device=x.device).expand(n))
        cdf = counts.cumsum(0)

        def order_statistic(k: int) -> torch.Tensor:  # the k-th smallest (1-based): the first level whose cdf >= k
            return (cdf < k).sum().float()
    else:

        def order_statistic(k: int) -> torch.Tensor:
            return x.kthvalue(k).values

    out = []
    for q in qs:
        pos = q / 100.0 * (n - 1)
        lo_k = int(np.floor(pos))
        frac = pos - lo_k
        lo = order_statistic(lo_k + 1)
        hi = order_statistic(min(lo_k + 2, n)) if frac > 0 else lo
        out.append(lo + (hi - lo) * frac)
    return out[0], out[1]


class DeviceProcessor:
    """Frames in and out of a torch backend's device (one per backend: it keeps the pinned staging buffers)."""

    def __init__(self, device: torch.device, dtype: torch.dtype, multiple: int) -> None:
        self.device, self.dtype, self.multiple = device, dtype, multiple
        self.cuda = device.type == "cuda"
        self._staging: dict[tuple, torch.Tensor] = {}
        self._copied: dict[tuple, torch.cuda.Event] = {}  # the last upload from each staging buffer

    def upload(self, image: np.ndarray) -> torch.Tensor:
        """The frame on the device in its own dtype (uint16 as int16 bits; one copy; on CUDA through a pinned
        buffer, asynchronously)."""
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

    @staticmethod
    def value_range(t: torch.Tensor, dtype: np.dtype, agc: AGCConfig, radiometric: bool | None) -> tuple[Bound, Bound]:
        """(value mapped to 0, value mapped to 1): the rule of ``core.imaging.value_range`` computed on ``t`` (the
        frame as float32). Integer frames need no host synchronisation; a float frame's finite-value filter does."""
        if dtype == np.uint8:
            return 0.0, 255.0
        floating = np.issubdtype(dtype, np.floating)
        if not (dtype == np.uint16 or (floating and radiometric)):
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
            lo, hi = flat.min(), flat.max()
        else:
            qs = (agc.low_percentile, agc.high_percentile)
            lo, hi = percentiles(flat, qs) if floating else percentiles(flat, qs, levels=65536)
        window = lo.abs().mul(1e-6).clamp(min=1e-6) if floating else 1.0
        return lo, torch.maximum(hi, lo + window)  # a flat frame keeps a small window: the mapping stays invertible

    def prepare(
        self, raw: torch.Tensor, dtype: np.dtype, order: str, agc: AGCConfig, radiometric: bool | None
    ) -> tuple[torch.Tensor, Bound, Bound]:
        """A frame on the device (as :meth:`upload` gives it) -> (1x3xHpxWp tensor in [0, 1], RGB, padded, in the
        backend's dtype; the value mapped to 0; the value mapped to 1)."""
        h, w = raw.shape[:2]
        channels = 1 if raw.ndim == 2 else raw.shape[2]
        t = raw
        if dtype == np.uint16:
            t = t.to(torch.int32) & 0xFFFF  # int16 bits: back to unsigned counts
        t = t.float()
        lo, hi = self.value_range(t, dtype, agc, radiometric)
        if not (isinstance(lo, float) and isinstance(hi, float) and (lo, hi) == (0.0, 1.0)):
            t = (t - lo) * (1.0 / (hi - lo))
        t = t.clamp(0.0, 1.0)  # not in place: t may still be the caller's (read-only) buffer
        if dtype.kind == "f":
            t = torch.nan_to_num(t, nan=0.0)
        t = t.reshape(h, w, channels).permute(2, 0, 1)
        if order == "bgr":
            t = t.flip(0)
        elif channels == 1:
            t = t.expand(3, -1, -1)
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        t = t[None]
        if ph or pw:
            t = F.pad(t, (0, pw, 0, ph), mode="replicate")
        if self.cuda:
            return t.to(self.dtype).contiguous(memory_format=torch.channels_last), lo, hi
        return t.contiguous(), lo, hi

    @staticmethod
    def finish(out: torch.Tensor, layout: FrameLayout, scale: int = 1) -> torch.Tensor:
        """A 1xCxHxW network output -> the caller's image on the device: cropped to the frame's size x ``scale``,
        its channel order, quantised to its dtype (uint16 as int16 bits, float frames as float32)."""
        h, w = layout.shape[0] * scale, layout.shape[1] * scale
        y = out[0, :, :h, :w].float()
        if layout.channels == 1:
            y = y.mean(dim=0, keepdim=True)
        elif layout.color_order == "bgr":
            y = y.flip(0)
        y = y.clamp(0.0, 1.0).permute(1, 2, 0)
        lo, hi = layout.value_range
        if layout.dtype == np.uint8:
            return torch.round(y * 255.0).to(torch.uint8)
        if layout.dtype == np.uint16:
            counts = torch.round(y * (hi - lo) + lo).clamp(0, 65535).to(torch.int32)
            return torch.where(counts > 32767, counts - 65536, counts).to(torch.int16)
        return y * (hi - lo) + lo

    @staticmethod
    def download(y: torch.Tensor, layout: FrameLayout) -> np.ndarray:
        """:meth:`finish`'s image -> a NumPy image of the layout's dtype and rank (one device-to-host copy)."""
        arr = y.cpu().numpy()
        if layout.dtype == np.uint16:
            arr = arr.view(np.uint16)
        elif layout.dtype.kind == "f":
            arr = arr.astype(layout.dtype, copy=False)
        return np.ascontiguousarray(arr.reshape(arr.shape[:2]) if len(layout.shape) == 2 else arr)

    def to_input(
        self, image: np.ndarray, color_order: str, agc: AGCConfig, radiometric: bool | None = None
    ) -> tuple[torch.Tensor, FrameLayout, tuple[int, int]]:
        """(1x3xHpxWp tensor in [0, 1], RGB, padded, in the backend's dtype; the layout; the unpadded size). The
        layout's value range may hold 0-d device tensors."""
        order = "mono" if image_channels(image) == 1 else color_order
        x, lo, hi = self.prepare(self.upload(image), image.dtype, order, agc, radiometric)
        return x, FrameLayout(image.dtype, image.shape, order, (lo, hi)), image.shape[:2]

    def to_image(self, out: torch.Tensor, layout: FrameLayout, size: tuple[int, int], scale: int = 1) -> np.ndarray:
        """A 1xCxHxW network output -> the caller's image (layout's dtype, channel order, size x ``scale``)."""
        return self.download(self.finish(out, layout, scale), layout)


class FramePipeline:
    """One integer frame format (shape, uint8/uint16, channel order) and task: the frame's bytes in, the task's
    output images in the frame's dtype out, with pre-processing, the network and post-processing as one function
    of device tensors. On CUDA (with the backend's CUDA graphs on) it is captured once as a CUDA graph on the
    backend's stream and replayed; elsewhere, or if capture fails, it runs as it is.

    Float frames are not taken: their invalid-pixel filter has a data-dependent size.
    """

    def __init__(
        self,
        processor: DeviceProcessor,
        backend,
        task: str,
        image: np.ndarray,
        color_order: str,
        agc: AGCConfig,
    ) -> None:
        """``backend``: a :class:`~srdb_ros.inference.backends.TorchBackend`; ``image``: a frame of the format."""
        if image.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"a frame pipeline takes uint8 or uint16 frames, not {image.dtype}")
        order = "mono" if image_channels(image) == 1 else color_order
        self.processor, self.backend, self.task, self.agc = processor, backend, task, agc
        self.layout = FrameLayout(image.dtype, image.shape, order, (0.0, 1.0))
        self.scales = [backend.upscale if name == "sr" else 1 for name in output_tasks(task)]
        self.graph = None
        if processor.cuda and backend.use_graphs:
            self._capture(image)

    def _body(self, raw: torch.Tensor) -> list[torch.Tensor]:
        x, lo, hi = self.processor.prepare(raw, self.layout.dtype, self.layout.color_order, self.agc, None)
        layout = FrameLayout(self.layout.dtype, self.layout.shape, self.layout.color_order, (lo, hi))
        outs = self.backend.forward_tensors(x, self.task)
        images = [self.processor.finish(o, layout, s) for o, s in zip(outs, self.scales)]
        return images + outs[len(self.scales) :]  # then the blur estimate, when the model has one

    def _capture(self, image: np.ndarray) -> None:
        stream = self.backend.stream
        storage = torch.int16 if image.dtype == np.uint16 else torch.uint8  # as upload() gives the frame
        self.raw = torch.empty(image.shape, dtype=storage, device=self.processor.device)
        try:
            with torch.inference_mode(), torch.cuda.stream(stream):
                for _ in range(3):  # warm-up on the capture stream (cuDNN autotuning, allocator)
                    self._body(self.raw)
                stream.synchronize()
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, stream=stream):
                    self.outputs = self._body(self.raw)
        except RuntimeError as exc:
            LOG.warning("%s %s frames run without a CUDA graph: capture failed (%s)", self.task, image.shape, exc)
            return
        self.graph = graph

    def run(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """The task's outputs (``{"deblur": ..., "sr": ...}``) for a frame of this pipeline's format."""
        if image.shape != self.layout.shape or image.dtype != self.layout.dtype:
            raise ValueError(f"this pipeline takes {self.layout.dtype} {self.layout.shape} frames, not {image.shape}")
        with torch.inference_mode():
            device_frame = self.processor.upload(image)
            if self.graph is None:
                outs = self._body(device_frame)
            else:
                stream = self.backend.stream
                stream.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(stream):
                    self.raw.copy_(device_frame, non_blocking=True)
                    self.graph.replay()
                torch.cuda.current_stream().wait_stream(stream)
                outs = self.outputs
            n = len(self.scales)
            images = [self.processor.download(y, self.layout) for y in outs[:n]]
            images += [y.float().cpu().numpy() for y in outs[n:]]
        return split_outputs(self.task, images)
