"""``srdb bench``: latency of each backend and task against the reference code, in one process.

For every (backend, task, size), median and p95 latency, FPS and the ratio of the reference's median to ours
(> 1 means faster than the reference), in these modes:

- ``model``: the backend on a padded float array, and ``model_unfused_aff`` for PyTorch: the same model with its
  encoder's feature fusion (AFF) in the reference form, to measure that fusion;
- ``end_to_end``: uint8 image -> pre-processing -> backend -> post-processing -> uint8 image (for PyTorch, on
  the backend's device), and ``end_to_end_numpy`` for PyTorch with the NumPy pre/post-processing, to compare;
- ``ros`` (``--mode ros``): a sensor_msgs/Image in, conversion, enhance, the output Image message built (no DDS);
- ``eo_ir_pair`` (deblur): one ``Enhancer.enhance_batch`` call with an EO rgb8 and an IR mono16 frame of the size,
  the node's two-camera load (its FPS counts both frames; its ratio is against the reference doing two frames);
  ``four_cameras``: the same with three EO frames and an IR one (``cameras: [front, left, rear, thermal]``, all
  deblurring frames of one size): per frame no dearer than the pair when the backend call batches them.
- for a model with the blur estimator (PyTorch, deblur and both): ``end_to_end_passed``, a frame the estimate
  passes through as sharp (``min_blur_px`` above its blur: no deblur decoder), and ``end_to_end_no_estimator``,
  the same model without the estimator (the estimate's own cost is ``end_to_end`` over it).

End-to-end modes also give the median of each stage (convert, preprocess, infer, postprocess, to_message).
The reference is the official MIMO-UNet-16 / SPAN-48 forward in eager fp32 (see
:mod:`srdb_ros.models.reference`): for ``deblur`` MIMO-UNet on the frame, for ``sr``/``both`` MIMO-UNet then
SPAN on the low-resolution frame; its ``end_to_end`` adds the reference code's own uint8 <-> tensor steps.
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..core.contract import OUTPUT_NAMES, PAPER_INPUT_SIZES
from ..inference.backends import ModelFiles, OnnxRuntimeBackend, TensorRTBackend, TorchBackend
from ..inference.enhancer import Enhancer, Frame
from ..inference.processing import pad_array
from ..models import load_model_or_config
from ..models.reference import ReferencePipeline

LOG = logging.getLogger(__name__)


@dataclass
class Record:
    backend: str
    device: str
    task: str
    size: str  # input WxH
    mode: str  # see the module docstring
    median_ms: float
    p95_ms: float
    fps: float
    ratio_vs_reference: float | None = None
    peak_gpu_mib: float | None = None
    stages_ms: dict[str, float] | None = None  # median of each stage (end-to-end modes)


EO_IR_MODE = "eo_ir_pair"  # one Enhancer.enhance_batch call with an EO and an IR frame
FOUR_CAMERAS_MODE = "four_cameras"  # one call with three EO frames and an IR one


def _thermal_frame(h: int, w: int) -> np.ndarray:
    """A mono16 frame of raw counts in a microbolometer's typical band (gain control has work to do)."""
    return np.random.default_rng(2).integers(7000, 9000, (h, w), dtype=np.uint16)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_call(fn, repeats: int, warmup: int, device: str = "cpu") -> list[float]:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def _record(
    backend: str, device: str, task: str, size, mode: str, times: list[float], peak=None, frames: int = 1
) -> Record:
    """``frames``: images per timed call (FPS counts images)."""
    med = statistics.median(times)
    p95 = float(np.percentile(times, 95))
    return Record(
        backend,
        device,
        task,
        f"{size[0]}x{size[1]}",
        mode,
        round(med, 2),
        round(p95, 2),
        round(frames * 1e3 / med, 2),
        None,
        peak,
    )


def reference_records(
    task: str, size, device: str, repeats: int, warmup: int, base_channels: int, image: np.ndarray
) -> list[Record]:
    """The reference's model-only time, and its end-to-end time with the reference code's own uint8 <-> tensor
    steps (``/255``, pad, forward, clamp, ``*255``, round, crop, back to the host)."""
    ref = ReferencePipeline(base_channels).eval().to(device)
    x = torch.rand(1, 3, size[1] + (-size[1]) % 4, size[0] + (-size[0]) % 4, device=device)
    scale = 1 if task == "deblur" else 4

    def end_to_end() -> np.ndarray:
        t = torch.from_numpy(image).to(device).permute(2, 0, 1)[None].float() / 255.0
        h, w = t.shape[-2:]
        t = torch.nn.functional.pad(t, (0, (-w) % 4, 0, (-h) % 4), mode="reflect")
        y = ref(t, task)[..., : h * scale, : w * scale].clamp(0, 1)
        return (y * 255.0).round().byte()[0].permute(1, 2, 0).cpu().numpy()

    with torch.no_grad():
        model = time_call(lambda: ref(x, task), repeats, warmup, device)
        e2e = time_call(end_to_end, repeats, max(1, warmup // 2), device)
    return [_record("reference", device, task, size, mode, t) for mode, t in (("model", model), ("end_to_end", e2e))]


def _stage_medians(timings: list[dict[str, float]]) -> dict[str, float]:
    stages = dict.fromkeys(k for t in timings for k in t)
    return {k: round(statistics.median(t[k] for t in timings if k in t), 2) for k in stages}


def make_backends(names: list[str], device: str, model, precision: str, workdir) -> list:
    """Backends to time for ``model``; those that cannot run here are skipped with a line on stderr."""
    from ..models import save_model

    weights = workdir / "bench_model.safetensors"
    save_model(model, weights)
    backends = []
    for name in names:
        try:
            if name == "torch":
                backends.append(TorchBackend(load_model_or_config(str(weights)), device, precision))
            elif name == "onnxruntime":
                backends.append(OnnxRuntimeBackend(ModelFiles(weights=str(weights)), device))
            elif name == "tensorrt":
                backends.append(
                    TensorRTBackend(ModelFiles(weights=str(weights), engine=str(workdir / "bench_{task}.engine")))
                )
        except Exception as exc:  # noqa: BLE001 - report and go on with the others
            print(f"skipping {name}: {exc}", file=sys.stderr)
    return backends


def _unfused_aff(backend: TorchBackend, device: str, opts: BenchOptions) -> TorchBackend:
    """The backend's model with its encoder's feature fusion in the reference form (upsampled concatenation)."""
    import copy

    model = copy.deepcopy(backend.model).float()
    model.encoder.fused_aff = False
    return TorchBackend(model, device, opts.precision)


def _without_estimator(backend: TorchBackend, device: str, opts: BenchOptions) -> TorchBackend:
    """The backend's model without its blur estimator (what the estimate costs)."""
    import copy

    model = copy.deepcopy(backend.model).float()
    model.blur_head = None
    return TorchBackend(model, device, opts.precision)


@dataclass
class BenchOptions:
    model: str | None = None  # default: the bundled student
    random_init: bool = False
    task: str = "all"
    backend: str = "all"
    device: str = "auto"
    precision: str = "fp16"
    sizes: list[tuple[int, int]] | None = None  # input sizes (width, height); default: the paper's per task
    repeats: int = 0  # 0: 3 on CPU, 50 on CUDA
    warmup: int | None = None
    threads: int = 0
    quality: bool = True
    json: bool = False
    mode: str = "default"  # "ros" adds the message path


def run_bench(opts: BenchOptions, message_path=None) -> tuple[list[Record], list[dict]]:
    """Every record of the run and the quality drift rows. ``message_path(enhancer, image, task)`` (given by the
    CLI from the ROS layer for ``--mode ros``) returns a callable that runs one frame as a message and returns its
    stage timings."""
    import tempfile
    from pathlib import Path

    device = opts.device if opts.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: torch sees no CUDA GPU")
    torch.set_num_threads(opts.threads or torch.get_num_threads())
    repeats = opts.repeats or (50 if device == "cuda" else 3)
    warmup = opts.warmup if opts.warmup is not None else (10 if device == "cuda" else 1)
    tasks = [opts.task] if opts.task != "all" else ["deblur", "sr", "both"]
    names = ["torch", "onnxruntime", "tensorrt"] if opts.backend == "all" else [opts.backend]
    model = load_model_or_config(opts.model, opts.random_init)
    base = model.config.base_channels
    records: list[Record] = []
    unfused_aff_backends: dict = {}
    no_estimator_backends: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        backends = make_backends(names, device, model, opts.precision, Path(tmp))
        for task in tasks:
            sizes = opts.sizes or [PAPER_INPUT_SIZES[task]]
            for size in sizes:
                w, h = size
                image = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
                refs = {r.mode: r for r in reference_records(task, size, device, repeats, warmup, base, image)}
                records.extend(refs.values())
                x, _ = pad_array(np.random.default_rng(1).random((1, 3, h, w), dtype=np.float32), 4)
                # the camera loads: an EO rgb8 and an IR mono16 frame per call; three EO frames and an IR one
                pair = [Frame(image, task), Frame(_thermal_frame(h, w), task)] if task == "deblur" else None
                batches = {EO_IR_MODE: pair, FOUR_CAMERAS_MODE: [*pair[:1] * 3, pair[1]]} if pair else {}
                for backend in backends:
                    dev = backend.memory_device
                    if device == "cuda":
                        torch.cuda.reset_peak_memory_stats()
                    runs = {"model": (lambda b=backend, t=task, a=x: b.infer(t, a), None)}
                    if isinstance(backend, TorchBackend):  # the fusion's effect: the same model without it
                        if backend not in unfused_aff_backends:
                            unfused_aff_backends[backend] = _unfused_aff(backend, device, opts)
                        unfused = unfused_aff_backends[backend]
                        runs["model_unfused_aff"] = (lambda b=unfused, t=task, a=x: b.infer(t, a), None)
                    enhancers = {"end_to_end": Enhancer(backend)}
                    if isinstance(backend, TorchBackend):
                        enhancers["end_to_end_numpy"] = Enhancer(backend, device_processing=False)
                    for mode, enhancer in enhancers.items():
                        runs[mode] = (lambda e=enhancer, t=task, i=image: e.enhance(i, t).timings_ms, True)
                    if message_path is not None and opts.mode == "ros":
                        runs["ros"] = (message_path(enhancers["end_to_end"], image, task), True)
                    for mode, frames in batches.items():
                        runs[mode] = (lambda e=enhancers["end_to_end"], f=frames: e.enhance_batch(f), None)
                    if backend.skips_decoder and task != "sr":
                        passed = [Frame(image, task, min_blur_px=float("inf"))]
                        runs["end_to_end_passed"] = (
                            lambda e=enhancers["end_to_end"], f=passed: e.enhance_batch(f)[0].timings_ms,
                            True,
                        )
                        if backend not in no_estimator_backends:
                            no_estimator_backends[backend] = _without_estimator(backend, device, opts)
                        plain = Enhancer(no_estimator_backends[backend])
                        runs["end_to_end_no_estimator"] = (
                            lambda e=plain, t=task, i=image: e.enhance(i, t).timings_ms,
                            True,
                        )
                    for mode, (fn, staged) in runs.items():
                        timings: list[dict] = []
                        call = (lambda f=fn, s=timings: s.append(f())) if staged else fn
                        times = time_call(call, repeats, warmup if mode == "model" else max(1, warmup // 2), device)
                        peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
                        frames = len(batches[mode]) if mode in batches else 1
                        rec = _record(backend.describe(), dev, task, size, mode, times, peak, frames)
                        reference = refs["model" if mode == "model" else "end_to_end"]
                        rec.ratio_vs_reference = round(frames * reference.median_ms / rec.median_ms, 3)
                        rec.stages_ms = _stage_medians(timings[-repeats:]) if timings else None
                        records.append(rec)
                        if not opts.json:
                            _print_row(rec)
                if not opts.json:
                    for ref in refs.values():
                        _print_row(ref)
        drift = quality_drift(backends, Path(tmp) / "bench_model.safetensors") if opts.quality else []
    return records, drift


def quality_drift(backends: list, weights, images: int = 3) -> list[dict]:
    """PSNR of each backend's outputs minus PSNR of the fp32 PyTorch reference, on the bundled real frames."""
    from ..quality.metrics import quality
    from ..quality.scoring import deblur_pairs_from_sharp, sr_pairs_from_hr
    from ..resources import share_dir

    samples = share_dir() / "samples"
    pairs = {
        "deblur": deblur_pairs_from_sharp(samples / "eo", max_images=images),
        "sr": sr_pairs_from_hr(samples / "ir", max_images=images, crop=256),
    }
    fp32 = Enhancer(TorchBackend(load_model_or_config(str(weights)), "cpu", "fp32"))
    rows = []
    for backend in backends:
        enhancer = Enhancer(backend)
        for task, task_pairs in pairs.items():
            diffs = []
            for pair in task_pairs:
                img = np.rint(pair.input * 255).astype(np.uint8)
                ours = getattr(enhancer.enhance(img, task), OUTPUT_NAMES[task])
                ref = getattr(fp32.enhance(img, task), OUTPUT_NAMES[task])
                target = np.rint(pair.target * 255).astype(np.uint8)
                diffs.append(quality(ours, target, task)["psnr"] - quality(ref, target, task)["psnr"])
            rows.append(
                {
                    "backend": backend.describe(),
                    "task": task,
                    "images": len(diffs),
                    "psnr_diff_db_mean": round(float(np.mean(diffs)), 4),
                    "psnr_diff_db_max_abs": round(float(np.max(np.abs(diffs))), 4),
                }
            )
    return rows


def _print_row(r: Record) -> None:
    ratio = f"{r.ratio_vs_reference:.2f}x" if r.ratio_vs_reference is not None else "1.00x (ref)"
    peak = f" peak {r.peak_gpu_mib:.0f} MiB" if r.peak_gpu_mib else ""
    print(
        f"{r.backend:42s} {r.task:7s} {r.size:>9s} {r.mode:16s} median {r.median_ms:9.1f} ms  "
        f"p95 {r.p95_ms:9.1f} ms  {r.fps:7.2f} FPS  vs reference {ratio}{peak}",
        flush=True,
    )
    if r.stages_ms:
        total = r.median_ms or 1.0
        parts = ", ".join(f"{k} {v:.1f}" for k, v in r.stages_ms.items())
        outside = 100.0 * (1.0 - r.stages_ms.get("infer", 0.0) / total)
        print(f"{'':42s}   stages (median ms): {parts}; outside inference {outside:.1f} %", flush=True)


def bench_command(opts: BenchOptions, message_path=None) -> int:
    """``srdb bench``."""
    if not opts.json:
        print(
            f"srdb bench: model {opts.model or 'bundled student'}, device {opts.device}; "
            f"ratio = reference median / ours (reference: official MIMO-UNet + SPAN forward, eager fp32)"
        )
    records, drift = run_bench(opts, message_path)
    if opts.json:
        print(json.dumps({"records": [asdict(r) for r in records], "quality_vs_fp32": drift}, indent=2))
        return 0
    print("\noutput quality vs the fp32 PyTorch path on bundled real frames (PSNR difference, dB; limit 0.05):")
    for row in drift:
        print(
            f"  {row['backend']:42s} {row['task']:7s} mean {row['psnr_diff_db_mean']:+.4f}  "
            f"max |diff| {row['psnr_diff_db_max_abs']:.4f} over {row['images']} frames"
        )
    return 0
