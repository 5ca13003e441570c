"""``srdb bench``: latency of each backend and task against the reference code, in one process.

For every (backend, task, size): model-only latency (the backend on a padded float array) and end-to-end
latency (uint8 image -> pre-processing -> backend -> post-processing -> uint8 image), median and p95, FPS,
and the ratio of the reference's median to ours (> 1 means faster than the reference). The reference is the
official MIMO-UNet-16 / SPAN-48 forward in eager fp32 (see :mod:`srdb_ros.models.reference`): for ``deblur``
MIMO-UNet on the frame, for ``sr``/``both`` MIMO-UNet then SPAN on the low-resolution frame.
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
from ..inference.enhancer import Enhancer
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
    mode: str  # "model" or "end_to_end"
    median_ms: float
    p95_ms: float
    fps: float
    ratio_vs_reference: float | None = None
    peak_gpu_mib: float | None = None


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


def _record(backend: str, device: str, task: str, size, mode: str, times: list[float], peak=None) -> Record:
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
        round(1e3 / med, 2),
        None,
        peak,
    )


def reference_records(task: str, size, device: str, repeats: int, warmup: int, base_channels: int) -> Record:
    ref = ReferencePipeline(base_channels).eval().to(device)
    x = torch.rand(1, 3, size[1] + (-size[1]) % 4, size[0] + (-size[0]) % 4, device=device)
    with torch.no_grad():
        times = time_call(lambda: ref(x, task), repeats, warmup, device)
    return _record("reference", device, task, size, "model", times)


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


@dataclass
class BenchOptions:
    model: str | None = None  # default: the bundled student
    random_init: bool = False
    task: str = "all"
    backend: str = "all"
    device: str = "auto"
    precision: str = "fp16"
    size: str | None = None  # extra input size WxH
    repeats: int = 0  # 0: 3 on CPU, 50 on CUDA
    warmup: int | None = None
    threads: int = 0
    quality: bool = True
    json: bool = False


def run_bench(opts: BenchOptions) -> tuple[list[Record], list[dict]]:
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
    with tempfile.TemporaryDirectory() as tmp:
        backends = make_backends(names, device, model, opts.precision, Path(tmp))
        for task in tasks:
            sizes = [PAPER_INPUT_SIZES[task]] + (
                [tuple(int(v) for v in opts.size.lower().split("x"))] if opts.size else []
            )
            for size in sizes:
                w, h = size
                ref = reference_records(task, size, device, repeats, warmup, base)
                records.append(ref)
                image = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
                x, _ = pad_array(np.random.default_rng(1).random((1, 3, h, w), dtype=np.float32), 4)
                for backend in backends:
                    dev = getattr(backend, "device", device)
                    dev = dev.type if hasattr(dev, "type") else str(dev)
                    if device == "cuda":
                        torch.cuda.reset_peak_memory_stats()
                    model_times = time_call(lambda b=backend, t=task, a=x: b.infer(t, a), repeats, warmup, device)
                    enhancer = Enhancer(backend)
                    e2e_times = time_call(
                        lambda e=enhancer, t=task, i=image: e.enhance(i, t), repeats, max(1, warmup // 2), device
                    )
                    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
                    for mode, times in (("model", model_times), ("end_to_end", e2e_times)):
                        rec = _record(backend.describe(), dev, task, size, mode, times, peak)
                        rec.ratio_vs_reference = round(ref.median_ms / rec.median_ms, 3)
                        records.append(rec)
                        if not opts.json:
                            _print_row(rec)
                if not opts.json:
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
        f"{r.backend:42s} {r.task:7s} {r.size:>9s} {r.mode:10s} median {r.median_ms:9.1f} ms  "
        f"p95 {r.p95_ms:9.1f} ms  {r.fps:7.2f} FPS  vs reference {ratio}{peak}",
        flush=True,
    )


def bench_command(opts: BenchOptions) -> int:
    """``srdb bench``."""
    if not opts.json:
        print(
            f"srdb bench: model {opts.model or 'bundled student'}, device {opts.device}; "
            f"ratio = reference median / ours (reference: official MIMO-UNet + SPAN forward, eager fp32)"
        )
    records, drift = run_bench(opts)
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
