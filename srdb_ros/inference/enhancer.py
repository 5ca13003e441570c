"""The inference layer's front door: numpy image in, enhanced numpy images out, with stage timings."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from ..core.contract import BLUR_OUTPUT, TASKS, output_tasks
from .backends import Backend, TorchBackend
from .device_processing import DeviceProcessor, FramePipeline
from .processing import AGCConfig, FrameLayout, array_to_image, crop_array, image_to_array, pad_array, run_tiled


@dataclass(frozen=True)
class ProcessingOptions:
    """How frames are enhanced: gain control of 16-bit/float frames, and tiling (``tile_size`` 0: whole frames).
    Replaced whole, never changed in place: a call reads one set."""

    agc: AGCConfig = AGCConfig()
    tile_size: int = 0
    tile_overlap: int = 16


@dataclass
class Frame:
    """One image to enhance and how to read it."""

    image: np.ndarray
    task: str = "deblur"
    color_order: str = "rgb"
    radiometric: bool | None = None  # None: by dtype (uint16 yes); True for 32FC1-style float temperatures
    min_blur_px: float = 0.0  # pass through (not deblur) a frame whose estimated blur is shorter; 0: off


@dataclass
class EnhanceResult:
    """Outputs in the input's dtype and channel order; timings in milliseconds per stage. ``blur``: the
    estimate (x, y, length in input pixels) when the model has an estimator; ``passed_sharp``: the frame's blur
    was below its ``min_blur_px``, so ``deblurred`` is the input itself."""

    deblurred: np.ndarray | None = None
    super_resolved: np.ndarray | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    blur: tuple[float, float, float] | None = None
    passed_sharp: bool = False
    batch: int = 1  # frames in the backend call this frame ran in

    def settle(self, frame: Frame, blur) -> EnhanceResult:
        """Record the blur estimate (an array of 3, or None) and pass the frame through when it is below the
        frame's ``min_blur_px``."""
        if blur is not None:
            self.blur = tuple(float(v) for v in np.asarray(blur, np.float32).reshape(3))
            if self.deblurred is not None and self.blur[2] < frame.min_blur_px:
                self.deblurred, self.passed_sharp = frame.image, True
        return self


class Enhancer:
    """Pre-process, run a backend, post-process. Knows nothing about ROS.

    With a PyTorch backend (``device_processing``, the default for it), pre- and post-processing run as torch
    operations on the backend's device and the frame crosses to the device once, in its own dtype
    (:mod:`.device_processing`); on CUDA, uint8/uint16 frames run whole (pre-processing, network,
    post-processing) as one captured CUDA graph per frame format. Other backends, and tiling, use the NumPy path
    (:mod:`.processing`).
    """

    MAX_FRAME_PIPELINES = 8  # captured frame formats kept (each holds its graph's device memory)
    # frames per backend call on a CPU backend: 2 cost 4 % less per frame than 1, 4 cost 37 % more (cache), at
    # 320x256 on 2 cores (docs/performance.md); on a GPU equal-size frames share one call, however many
    CPU_MAX_BATCH = 2

    def __init__(
        self, backend: Backend, options: ProcessingOptions | None = None, device_processing: bool | None = None
    ) -> None:
        self.backend = backend
        self.options = options or ProcessingOptions()  # swapped whole by the node on a parameter change
        on_device = isinstance(backend, TorchBackend) if device_processing is None else device_processing
        if on_device and not isinstance(backend, TorchBackend):
            raise ValueError("device_processing needs a PyTorch backend")
        self.device = DeviceProcessor(backend.device, backend.dtype, backend.multiple) if on_device else None
        self._pipelines: OrderedDict[tuple, FramePipeline] = OrderedDict()

    def close(self) -> None:
        """Release the captured frame graphs, then the backend's device memory and sessions."""
        self._pipelines.clear()
        self.backend.close()

    def enhance(self, image: np.ndarray, task: str = "deblur", color_order: str = "rgb") -> EnhanceResult:
        return self.enhance_batch([Frame(image, task, color_order)])[0]

    def enhance_batch(self, frames: list[Frame]) -> list[EnhanceResult]:
        """Enhance frames of one task; frames of equal size share one backend call."""
        if not frames:
            return []
        task = frames[0].task
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        if any(f.task != task for f in frames):
            raise ValueError("enhance_batch takes frames of one task; group them by task first")
        if self.backend.memory_device == "cpu" and len(frames) > self.CPU_MAX_BATCH:
            step = self.CPU_MAX_BATCH
            return [r for i in range(0, len(frames), step) for r in self.enhance_batch(frames[i : i + step])]
        options = self.options
        if self.device is not None and not options.tile_size:
            return self._enhance_on_device(frames, task, options.agc)
        t0 = time.perf_counter()
        prepared = []
        for f in frames:
            x, layout = image_to_array(f.image, f.color_order, options.agc, f.radiometric)
            if x.shape[1] == 1:  # one-channel rule: replicate to RGB, outputs are averaged back
                x = np.repeat(x, 3, axis=1)
            x, size = pad_array(x, self.backend.multiple)
            prepared.append((x, size, layout))
        t1 = time.perf_counter()
        batched = len({p[0].shape for p in prepared}) == 1 and len(prepared) > 1 and not options.tile_size
        skip_below = _skip_below(frames) if self.backend.skips_decoder else 0.0
        if batched:
            outs = self._infer_whole(task, np.concatenate([p[0] for p in prepared]), skip_below)
            per_frame = [{k: v[i : i + 1] for k, v in outs.items()} for i in range(len(prepared))]
        else:
            per_frame = [self._infer(task, p[0], options, skip_below) for p in prepared]
        t2 = time.perf_counter()
        results = []
        for frame, (_, size, layout), outs in zip(frames, prepared, per_frame):
            result = self._postprocess(outs, size, layout).settle(frame, outs.get(BLUR_OUTPUT))
            result.batch = len(frames) if batched else 1
            results.append(result)
        t3 = time.perf_counter()
        n = len(frames)
        for r in results:
            r.timings_ms.update(
                preprocess=(t1 - t0) * 1e3 / n, infer=(t2 - t1) * 1e3 / n, postprocess=(t3 - t2) * 1e3 / n
            )
        return results

    def _enhance_on_device(self, frames: list[Frame], task: str, agc: AGCConfig) -> list[EnhanceResult]:
        """The device path: upload, process, infer (equal shapes batched), post-process, download."""
        import torch

        if all(self._captures(f) for f in frames):
            return [self._enhance_captured(f, agc) for f in frames]
        sync = self.device.cuda
        t0 = time.perf_counter()
        with torch.inference_mode():
            prepared = [self.device.to_input(f.image, f.color_order, agc, f.radiometric) for f in frames]
            if sync:
                torch.cuda.synchronize()
            t1 = time.perf_counter()
            groups: dict[tuple, list[int]] = {}
            for i, (x, _, _) in enumerate(prepared):
                groups.setdefault(tuple(x.shape), []).append(i)
            results: list[EnhanceResult | None] = [None] * len(frames)
            infer_s = post_s = 0.0
            for indices in groups.values():
                ti = time.perf_counter()
                batch = prepared[indices[0]][0] if len(indices) == 1 else torch.cat([prepared[i][0] for i in indices])
                skip_below = _skip_below([frames[i] for i in indices]) if self.backend.skips_decoder else 0.0
                outs = (
                    self.backend.infer_tensor(task, batch, skip_below)
                    if skip_below > 0
                    else self.backend.infer_tensor(task, batch)
                )
                if sync:
                    torch.cuda.synchronize()
                tp = time.perf_counter()
                blur = outs[BLUR_OUTPUT].float().cpu().numpy() if BLUR_OUTPUT in outs else None
                for j, i in enumerate(indices):
                    _, layout, size = prepared[i]
                    result = EnhanceResult()
                    if "deblur" in outs:
                        result.deblurred = self.device.to_image(outs["deblur"][j : j + 1], layout, size)
                    if "sr" in outs:
                        s = self.backend.upscale
                        result.super_resolved = self.device.to_image(outs["sr"][j : j + 1], layout, size, s)
                    results[i] = result.settle(frames[i], None if blur is None else blur[j])
                    results[i].batch = len(indices)
                infer_s += tp - ti
                post_s += time.perf_counter() - tp
        n = len(frames)
        for r in results:
            r.timings_ms.update(preprocess=(t1 - t0) * 1e3 / n, infer=infer_s * 1e3 / n, postprocess=post_s * 1e3 / n)
        return results

    def _captures(self, frame: Frame) -> bool:
        """Whether this frame runs as a captured whole-frame CUDA graph (uint8/uint16 on CUDA, graphs on)."""
        image, m = frame.image, self.backend.multiple
        if not (self.device.cuda and image.dtype in (np.uint8, np.uint16) and image.ndim >= 2):
            return False
        padded = (1, 3, -(-image.shape[0] // m) * m, -(-image.shape[1] // m) * m)
        return self.backend.captures_frames(frame.task, padded)

    def _enhance_captured(self, frame: Frame, agc: AGCConfig) -> EnhanceResult:
        t0 = time.perf_counter()
        image = frame.image
        order = frame.color_order if image.ndim == 3 and image.shape[2] == 3 else "mono"
        key = (frame.task, image.shape, image.dtype.str, order, agc)
        pipeline = self._pipelines.pop(key, None)
        if pipeline is None:
            pipeline = FramePipeline(self.device, self.backend, frame.task, image, order, agc)
            if len(self._pipelines) >= self.MAX_FRAME_PIPELINES:
                self._pipelines.popitem(last=False)
        self._pipelines[key] = pipeline
        t1 = time.perf_counter()
        outs = pipeline.run(image)
        result = EnhanceResult(deblurred=outs.get("deblur"), super_resolved=outs.get("sr")).settle(
            frame, outs.get(BLUR_OUTPUT)
        )
        result.timings_ms.update(preprocess=(t1 - t0) * 1e3, infer=(time.perf_counter() - t1) * 1e3, postprocess=0.0)
        return result

    def _infer_whole(self, task: str, x: np.ndarray, min_blur_px: float) -> dict[str, np.ndarray]:
        return self.backend.infer(task, x, min_blur_px) if min_blur_px > 0 else self.backend.infer(task, x)

    def _infer(
        self, task: str, x: np.ndarray, options: ProcessingOptions, min_blur_px: float = 0.0
    ) -> dict[str, np.ndarray]:
        if not options.tile_size or max(x.shape[-2:]) <= options.tile_size:
            return self._infer_whole(task, x, min_blur_px)
        keys = output_tasks(task)
        out = {}
        estimates = []  # per tile; the frame's blur is their median (tiles decode alike: no pass-through seams)

        def tile(t: np.ndarray, key: str) -> np.ndarray:
            outs = self.backend.infer(key, t)
            if BLUR_OUTPUT in outs:
                estimates.append(outs[BLUR_OUTPUT][0])
            return outs[key]

        for key in keys:  # tiles are stitched per output; "both" runs each task's graph per tile
            scale = self.backend.upscale if key == "sr" else 1
            out[key] = run_tiled(
                lambda t, k=key: tile(t, k), x, options.tile_size, options.tile_overlap, scale, self.backend.multiple
            )
        if estimates:
            out[BLUR_OUTPUT] = np.median(np.stack(estimates), axis=0)[None]
        return out

    def _postprocess(self, outs: dict[str, np.ndarray], size: tuple[int, int], layout: FrameLayout) -> EnhanceResult:
        result = EnhanceResult()
        if "deblur" in outs:
            result.deblurred = array_to_image(crop_array(outs["deblur"], size), layout)
        if "sr" in outs:
            s = self.backend.upscale
            result.super_resolved = array_to_image(crop_array(outs["sr"], size, s), layout, scale=s)
        return result


def _skip_below(frames: list[Frame]) -> float:
    """The blur below which a shared backend call may leave the decoder out: the lowest pass-through threshold
    of its frames (0 when any frame has none); each frame is then settled against its own threshold."""
    return min(f.min_blur_px for f in frames)
