"""Inference backends with one interface: padded 1x3xHxW float32 in, a dict of task outputs out."""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.contract import (
    BLUR_OUTPUT,
    INPUT_NAME,
    PAD_MULTIPLE,
    SCALE,
    TASKS,
    full_scale,
    outputs_by_name,
    split_outputs,
)

LOG = logging.getLogger(__name__)

BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
PRECISIONS = ("fp32", "fp16", "bf16")


DEVICE = r"auto|cpu|cuda|cuda:[0-9]+"  # the device names every backend takes


def is_device(name: str) -> bool:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
    return re.fullmatch(DEVICE, name) is not None


def cuda_index(device: str) -> int | None:
    """N of ``cuda:N`` (None for ``cuda``: the current GPU)."""
    return int(device[5:]) if device.startswith("cuda:") else None


def _check_cuda(device: str) -> None:
    """A clear error for ``cuda``/``cuda:N`` when torch sees no such GPU."""
    if not device.startswith("cuda"):
        return
    if not _cuda_available():
        raise BackendError(f"device {device}: torch sees no CUDA GPU; use device auto to fall back to the CPU")
    index = cuda_index(device)
    if index is not None:
        import torch

        count = torch.cuda.device_count()
        if index >= count:
            raise BackendError(f"device {device}: this machine has {count} GPU(s), numbered from 0")


class BackendError(RuntimeError):
    """A backend cannot run here, or its model file is missing or corrupt (the message names the fix)."""


@dataclass(frozen=True)
class ModelFiles:
    """Where the model comes from. ``onnx`` and ``engine`` may contain ``{task}``."""

    weights: str = ""
    onnx: str = ""
    engine: str = ""
    compiled: str = ""  # AOTInductor package(s) from `srdb compile`, for the PyTorch backend
    cache_dir: str = ""  # where graphs exported from ``weights`` are kept (default: $SRDB_CACHE_DIR or ~/.cache)

    @property
    def onnx_cache(self) -> Path | None:
        return Path(self.cache_dir) / "onnx" if self.cache_dir else None

    def for_task(self, template: str, task: str) -> Path:
        return Path(template.format(task=task))


class Backend(ABC):
    """Runs the network for one task on a padded NCHW float32 batch."""

    name = "backend"
    multiple = PAD_MULTIPLE
    upscale = SCALE
    memory_device = "cpu"  # where frames take memory: "cpu" or "cuda" (sizes the frame limit, inference.memory)

    @abstractmethod
    def infer(self, task: str, x: np.ndarray, min_blur_px: float = 0.0) -> dict[str, np.ndarray]:
        """``x``: Nx3xHxW float32 in [0, 1], H and W multiples of :attr:`multiple`. The result holds each single
        task's output and, for a model with a blur estimator, ``blur`` (N x 3). ``min_blur_px``: a backend that
        can (:attr:`skips_decoder`) leaves the deblur decoder out for frames estimated below it (their
        ``deblur`` output is then their input); others run it for every frame."""

    skips_decoder = False  # whether min_blur_px saves the deblur decoder here (PyTorch, run eagerly)
    estimates_blur = False  # whether the model has the blur estimator (a ``blur`` output)

    def describe(self) -> str:
        return self.name

    def warmup(self, task: str, size: tuple[int, int] = (64, 64)) -> None:
        self.infer(task, np.random.default_rng(0).random((1, 3, *size), dtype=np.float32))

    def close(self) -> None:
        """Release device memory and sessions."""


class TorchBackend(Backend):
    """PyTorch (deploy form) on CPU or CUDA.

    CUDA fast path: fp16/bf16 weights, channels_last, one CUDA graph captured per (task, input shape) on a
    dedicated stream, pinned host buffers with asynchronous copies, and optionally ``torch.compile`` (compiled
    once per shape, during warm-up). ``both`` computes the encoder once inside the graph.
    """

    name = "torch"

    def __init__(
        self,
        model_or_path,
        device: str = "auto",
        precision: str = "fp32",
        cuda_graphs: bool = True,
        compile_model: bool = False,
        packages: tuple[str, ...] = (),
        weights_path: str | None = None,
    ) -> None:
        """``packages``: AOTInductor packages (``srdb compile``) of ``weights_path`` (default: ``model_or_path``
        when it is a path), each used for the task and input size it was compiled for; one that does not match
        this device, torch or the weights is skipped with a warning."""
        import torch

        from ..models import SRDeblurNet, load_model

        if precision not in PRECISIONS:
            raise BackendError(f"precision must be one of {PRECISIONS}")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        _check_cuda(device)
        model = model_or_path if isinstance(model_or_path, SRDeblurNet) else load_model(model_or_path)
        self.device = torch.device(device)
        self.dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        if self.device.type == "cpu" and self.dtype != torch.float32:
            LOG.info("precision %s is not used on CPU; running fp32", precision)
            self.dtype = torch.float32
        self.precision = str(self.dtype).removeprefix("torch.")
        self.model = model.to_deploy().eval().to(self.device, self.dtype)
        self.upscale = self.model.upscale
        self._torch = torch
        self.cuda = self.device.type == "cuda"
        self.memory_device = self.device.type
        self._forward = self.model
        if self.cuda:
            self.model = self.model.to(memory_format=torch.channels_last)
            self._forward = self.model
            if compile_model:
                self._forward = torch.compile(self.model, dynamic=False, mode="max-autotune-no-cudagraphs")
            self.stream = torch.cuda.Stream(self.device)
            self.use_graphs = cuda_graphs
            self._graphs: dict[tuple, _CapturedGraph] = {}
        self._compiled: dict[tuple, object] = {}  # (task, input shape) -> AOTInductor runner
        weights_path = weights_path or (None if isinstance(model_or_path, SRDeblurNet) else str(model_or_path))
        for package in packages:
            self._load_package(package, weights_path)

    def _load_package(self, package: str, weights_path: str | None) -> None:
        from ..export.compiled import CompiledModelError, load_package

        if weights_path is None:
            LOG.warning("%s: not used: the backend was given a model, not its weights file", package)
            return
        try:
            info, runner = load_package(package, weights_path, self.device, self.precision_name)
        except CompiledModelError as exc:
            LOG.warning("%s", exc)
            return
        self._compiled[(info.task, (1, 3, info.height, info.width))] = runner
        LOG.info("compiled package %s: %s at %dx%d", package, info.task, info.width, info.height)

    @property
    def precision_name(self) -> str:
        return {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}[self.precision]

    def describe(self) -> str:
        extra = ", cuda graphs" if self.cuda and self.use_graphs else ""
        extra += f", {len(self._compiled)} compiled" if self._compiled else ""
        return f"torch ({self.device.type}, {self.precision}{extra}, {self.model.config.name})"

    def forward_tensors(self, t, task: str, min_blur_px: float = 0.0) -> list:
        """The network on a padded device tensor, eagerly: the task's outputs in order (deblur full scale, sr),
        then the blur estimate when the model has one."""
        out = self._forward(t, task, min_blur_px=min_blur_px) if min_blur_px > 0 else self._forward(t, task)
        results = []
        if out.deblur is not None:
            results.append(full_scale(out.deblur))
        if out.sr is not None:
            results.append(out.sr)
        if out.blur is not None:
            results.append(out.blur)
        return results

    @property
    def estimates_blur(self) -> bool:
        return self.model.blur_head is not None

    @property
    def skips_decoder(self) -> bool:
        return self.estimates_blur and not (self.cuda and self.use_graphs)

    def infer(self, task: str, x: np.ndarray, min_blur_px: float = 0.0) -> dict[str, np.ndarray]:
        torch = self._torch
        if (task, x.shape) in self._compiled:
            with torch.inference_mode():
                t = torch.from_numpy(x).to(self.device, self.dtype)
                outs = self._compiled[(task, x.shape)](t)
                return split_outputs(task, [o.float().cpu().numpy() for o in outs])
        if self.cuda and self.use_graphs:
            key = (task, x.shape)
            if key not in self._graphs:
                self._graphs[key] = _CapturedGraph(self, task, x.shape)
            return split_outputs(task, self._graphs[key].run(x))
        with torch.inference_mode():
            t = torch.from_numpy(x).to(self.device, self.dtype, non_blocking=True)
            if self.cuda:
                t = t.contiguous(memory_format=torch.channels_last)
            outs = self.forward_tensors(t, task, min_blur_px)
            return split_outputs(task, [r.float().cpu().numpy() for r in outs])

    def captures_frames(self, task: str, shape: tuple[int, ...]) -> bool:
        """Whether whole frames of this padded input shape run as captured CUDA graphs (no compiled package for
        it: packages run as they are)."""
        return self.cuda and self.use_graphs and (task, tuple(shape)) not in self._compiled

    def infer_tensor(self, task: str, t, min_blur_px: float = 0.0) -> dict:
        """``t``: Nx3xHxW on this backend's device and dtype (H, W multiples of :attr:`multiple`); the outputs stay
        on the device (on CUDA, in the captured graph's buffers until the next call). ``min_blur_px`` as
        :meth:`infer`."""
        torch = self._torch
        if (task, tuple(t.shape)) in self._compiled:
            with torch.inference_mode():
                return split_outputs(task, list(self._compiled[(task, tuple(t.shape))](t.contiguous())))
        if self.cuda and self.use_graphs:
            key = (task, tuple(t.shape))
            if key not in self._graphs:
                self._graphs[key] = _CapturedGraph(self, task, tuple(t.shape))
            return split_outputs(task, self._graphs[key].run_device(t))
        with torch.inference_mode():
            return split_outputs(task, self.forward_tensors(t, task, min_blur_px))

    def close(self) -> None:
        if self.cuda:
            self._graphs.clear()
            self._torch.cuda.empty_cache()


class _CapturedGraph:
    """One CUDA graph for a fixed (task, shape): static device buffers, pinned host buffers, own stream."""

    def __init__(self, backend: TorchBackend, task: str, shape: tuple[int, ...]) -> None:
        torch = backend._torch
        self.torch, self.stream = torch, backend.stream
        self.host_in = torch.empty(shape, dtype=torch.float32, pin_memory=True)
        self.dev_in = torch.empty(shape, dtype=backend.dtype, device=backend.device).contiguous(
            memory_format=torch.channels_last
        )
        with torch.inference_mode(), torch.cuda.stream(self.stream):
            for _ in range(3):  # warm-up on the capture stream (cuDNN autotuning, compile, allocator)
                backend.forward_tensors(self.dev_in, task)
            self.stream.synchronize()
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph, stream=self.stream):
                self.dev_out = backend.forward_tensors(self.dev_in, task)
        self.host_out = [torch.empty(o.shape, dtype=torch.float32, pin_memory=True) for o in self.dev_out]

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        torch = self.torch
        self.host_in.numpy()[...] = x
        with torch.cuda.stream(self.stream):
            self.dev_in.copy_(self.host_in, non_blocking=True)
            self.graph.replay()
            for host, dev in zip(self.host_out, self.dev_out):
                host.copy_(dev, non_blocking=True)
        self.stream.synchronize()
        return [h.numpy().copy() for h in self.host_out]

    def run_device(self, t) -> list:
        """Replay on a device tensor; the outputs are the graph's own buffers (valid until the next replay)."""
        torch = self.torch
        self.stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.stream):
            self.dev_in.copy_(t, non_blocking=True)
            self.graph.replay()
        torch.cuda.current_stream().wait_stream(self.stream)
        return self.dev_out


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime with the TensorRT, CUDA or CPU execution provider, in that order of preference."""

    name = "onnxruntime"
    PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")

    def __init__(self, files: ModelFiles, device: str = "auto", threads: int = 0) -> None:
        import onnxruntime as ort

        self.files = files
        self._ort = ort
        available = ort.get_available_providers()
        wanted = self.PREFERENCE if device == "auto" or device.startswith("cuda") else ("CPUExecutionProvider",)
        index = cuda_index(device)
        self.providers = [
            (p, {"device_id": index}) if index is not None and p != "CPUExecutionProvider" else p
            for p in wanted
            if p in available
        ]
        if device.startswith("cuda") and self.providers == ["CPUExecutionProvider"]:
            raise BackendError(
                "device 'cuda' requested, but this onnxruntime has no CUDA/TensorRT provider "
                "(pip install onnxruntime-gpu)"
            )
        self.memory_device = "cpu" if self.provider == "CPUExecutionProvider" else "cuda"
        self.options = ort.SessionOptions()
        if threads:
            self.options.intra_op_num_threads = threads
        self.sessions: dict[str, object] = {}

    def describe(self) -> str:
        return f"onnxruntime ({self.provider})"

    @property
    def provider(self) -> str:
        """The preferred execution provider's name."""
        first = self.providers[0]
        return first[0] if isinstance(first, tuple) else first

    @property
    def estimates_blur(self) -> bool:
        """Whether the graphs loaded so far (warm-up loads them) have the blur output."""
        return any(BLUR_OUTPUT in [o.name for o in s.get_outputs()] for s in self.sessions.values())

    def session(self, task: str):
        if task not in self.sessions:
            path = self._onnx_for(task)
            try:
                self.sessions[task] = self._ort.InferenceSession(str(path), self.options, providers=self.providers)
            except Exception as exc:  # onnxruntime raises its own exception types for bad files
                raise BackendError(
                    f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0]}); "
                    f"re-export it with `srdb export --task {task}`"
                ) from exc
        return self.sessions[task]

    def _onnx_for(self, task: str) -> Path:
        from ..export.onnx_export import ensure_onnx

        if self.files.onnx:
            path = self.files.for_task(self.files.onnx, task)
            if not path.is_file():
                raise BackendError(
                    f"{path}: ONNX file not found; create it with "
                    f"`srdb export --model MODEL --task {task} --output {path}`"
                )
            return path
        if self.files.weights:
            return ensure_onnx(self.files.weights, task, self.files.onnx_cache)
        raise BackendError("onnxruntime backend needs an ONNX path or a weights file to export from")

    def infer(self, task: str, x: np.ndarray, min_blur_px: float = 0.0) -> dict[str, np.ndarray]:
        sess = self.session(task)
        dtype = np.float16 if "float16" in sess.get_inputs()[0].type else np.float32
        outs = sess.run(None, {INPUT_NAME: x.astype(dtype, copy=False)})
        names = [o.name for o in sess.get_outputs()]
        return outputs_by_name(names, [o.astype(np.float32, copy=False) for o in outs])


class TensorRTBackend(Backend):
    """A serialized TensorRT 10 engine per task, run with ``execute_async_v3`` on its own CUDA stream.

    Engines whose sidecar JSON says they were built for another GPU, TensorRT version or ONNX file are
    rebuilt from the ONNX when ``rebuild`` is set (and an ONNX is available), otherwise refused.
    """

    name = "tensorrt"
    memory_device = "cuda"

    def __init__(
        self, files: ModelFiles, rebuild: bool = True, force_rebuild: bool = False, device: str = "cuda"
    ) -> None:
        try:
            import tensorrt as trt
        except ImportError as exc:
            raise BackendError("the `tensorrt` Python package is not installed (TensorRT 10 needed)") from exc
        import torch

        if not torch.cuda.is_available():
            raise BackendError("TensorRT needs a CUDA GPU, and torch sees none")
        if not files.engine:
            raise BackendError("tensorrt backend needs an engine path (engine_path, may contain {task})")
        self.files = files
        self.rebuild = rebuild
        self.force_rebuild = force_rebuild
        self._trt = trt
        self._torch = torch
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        _check_cuda(device)
        if cuda_index(device) is not None:  # engines, buffers and the stream on GPU N
            torch.cuda.set_device(cuda_index(device))
        self.stream = torch.cuda.Stream()
        self.contexts: dict[str, tuple[object, object]] = {}

    def describe(self) -> str:
        return f"tensorrt {self._trt.__version__} ({self._torch.cuda.get_device_name()})"

    @property
    def estimates_blur(self) -> bool:
        """Whether the engines loaded so far (warm-up loads them) have the blur output."""
        return any(BLUR_OUTPUT in _output_names(engine, self._trt) for engine, _ in self.contexts.values())

    def _engine_path(self, task: str) -> Path:
        from ..export.onnx_export import ensure_onnx
        from ..export.tensorrt_build import EngineError, build_engine, engine_mismatch

        path = self.files.for_task(self.files.engine, task)
        onnx_path = self.files.for_task(self.files.onnx, task) if self.files.onnx else None
        if onnx_path is None and self.files.weights:
            onnx_path = ensure_onnx(self.files.weights, task, self.files.onnx_cache)
        reason = "rebuild forced" if self.force_rebuild else None
        if reason is None:
            if not path.is_file():
                reason = "engine file not found"
            else:
                try:
                    reason = engine_mismatch(path, onnx_path)
                except EngineError as exc:
                    reason = str(exc)
        if reason is None:
            return path
        if path.is_file() and not self.force_rebuild:  # never overwrite an engine the user gave without asking
            raise BackendError(
                f"{path}: cannot use this engine ({reason}); rebuild it with `srdb build-engine` or start with "
                f"force_engine_update:=true to replace it"
            )
        if not (self.rebuild and onnx_path is not None and Path(onnx_path).is_file()):
            raise BackendError(
                f"{path}: cannot use this engine ({reason}); rebuild it with "
                f"`srdb build-engine --onnx MODEL_{task}.onnx --output {path}`"
            )
        LOG.warning("%s: %s; building it from %s (this takes minutes once)", path, reason, onnx_path)
        build_engine(onnx_path, path)
        return path

    def _context(self, task: str):
        if task not in self.contexts:
            path = self._engine_path(task)
            engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
            if engine is None:
                raise BackendError(
                    f"{path}: TensorRT could not deserialize it (corrupt or foreign); rebuild it "
                    f"with `srdb build-engine`"
                )
            self.contexts[task] = (engine, engine.create_execution_context())
        return self.contexts[task]

    def infer(self, task: str, x: np.ndarray, min_blur_px: float = 0.0) -> dict[str, np.ndarray]:
        trt, torch = self._trt, self._torch
        engine, context = self._context(task)
        names = _output_names(engine, trt)
        in_dtype = torch.float16 if engine.get_tensor_dtype(INPUT_NAME) == trt.DataType.HALF else torch.float32
        with torch.cuda.stream(self.stream):
            inp = torch.from_numpy(x).pin_memory().to("cuda", in_dtype, non_blocking=True).contiguous()
            context.set_input_shape(INPUT_NAME, tuple(inp.shape))
            context.set_tensor_address(INPUT_NAME, inp.data_ptr())
            outputs = []
            for name in names:
                shape = tuple(context.get_tensor_shape(name))
                dtype = torch.float16 if engine.get_tensor_dtype(name) == trt.DataType.HALF else torch.float32
                out = torch.empty(shape, dtype=dtype, device="cuda")
                context.set_tensor_address(name, out.data_ptr())
                outputs.append(out)
            if not context.execute_async_v3(self.stream.cuda_stream):
                raise BackendError(f"TensorRT execution failed for task {task}")
            host = [o.float().cpu() for o in outputs]
        self.stream.synchronize()
        return outputs_by_name(names, [h.numpy() for h in host])

    def close(self) -> None:
        self.contexts.clear()


def create_backend(
    kind: str = "auto",
    files: ModelFiles | None = None,
    device: str = "auto",
    precision: str = "fp16",
    force_engine_update: bool = False,
) -> Backend:
    """Create a backend; ``auto`` tries TensorRT, then PyTorch on CUDA, then ONNX Runtime, then PyTorch on CPU.

    ``force_engine_update`` rebuilds TensorRT engines from the ONNX even when they match this machine, whether
    TensorRT was asked for or chosen by ``auto``.
    """
    files = files or ModelFiles()

    def torch_backend(torch_device: str, torch_precision: str) -> TorchBackend:
        return TorchBackend(
            _weights(files), torch_device, torch_precision, packages=_packages(files), weights_path=files.weights
        )

    if kind not in BACKENDS:
        raise BackendError(f"backend must be one of {BACKENDS}, got {kind!r}")
    if not is_device(device):
        raise BackendError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
    _check_cuda(device)
    gpu = "cuda" if device == "auto" else device
    if kind == "tensorrt":
        return TensorRTBackend(files, force_rebuild=force_engine_update, device=gpu)
    if kind == "onnxruntime":
        return OnnxRuntimeBackend(files, device)
    if kind == "torch":
        return torch_backend(device, precision)
    reasons = []
    candidates = []
    if files.engine and device != "cpu":
        candidates.append(("tensorrt", lambda: TensorRTBackend(files, force_rebuild=force_engine_update, device=gpu)))
    else:
        reasons.append("tensorrt: no engine path given" if device != "cpu" else "tensorrt: device is cpu")
    if device != "cpu" and _cuda_available():
        candidates.append(("torch-cuda", lambda: torch_backend(gpu, precision)))
    elif device != "cpu":
        reasons.append("torch-cuda: torch sees no CUDA GPU")
    if files.onnx or files.weights:
        candidates.append(("onnxruntime", lambda: OnnxRuntimeBackend(files, device)))
    candidates.append(("torch-cpu", lambda: torch_backend("cpu", "fp32")))
    for name, make in candidates:
        try:
            backend = make()
        except BackendError as exc:
            reasons.append(f"{name}: {exc}")
            continue
        LOG.info("backend auto -> %s%s", backend.describe(), f" (skipped: {'; '.join(reasons)})" if reasons else "")
        return backend
    raise BackendError("no backend could start: " + "; ".join(reasons))


def _output_names(engine, trt) -> list[str]:
    """A TensorRT engine's output tensor names, in order."""
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    return [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _packages(files: ModelFiles) -> tuple[str, ...]:
    """The compiled packages that exist for ``files.compiled`` (one per task when it contains ``{task}``)."""
    if not files.compiled:
        return ()
    paths = {str(files.for_task(files.compiled, task)) for task in TASKS}
    missing = [p for p in sorted(paths) if not Path(p).is_file()]
    if len(missing) == len(paths):
        raise BackendError(f"{files.compiled}: no compiled package found; make one with `srdb compile`")
    return tuple(p for p in sorted(paths) if p not in missing)


def _weights(files: ModelFiles):
    from ..models import WeightFileError, load_model

    if not files.weights:
        raise BackendError("the torch backend needs a weights file (.safetensors)")
    try:
        return load_model(files.weights)
    except WeightFileError as exc:
        raise BackendError(str(exc)) from exc


__all__ = [
    "BACKENDS",
    "Backend",
    "BackendError",
    "ModelFiles",
    "OnnxRuntimeBackend",
    "TASKS",
    "TensorRTBackend",
    "TorchBackend",
    "create_backend",
]
