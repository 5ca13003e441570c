"""TensorRT 10 engine build from an exported ONNX graph, with a sidecar JSON that says what it was built for."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..core.contract import INPUT_NAME
from ..core.files import atomic_output, file_digest
from .onnx_export import onnx_task

LOG = logging.getLogger(__name__)

DEFAULT_PROFILE = {"min": (1, 3, 64, 64), "opt": (1, 3, 984, 1240), "max": (2, 3, 1088, 1920)}


class EngineError(RuntimeError):
    """An engine file is missing, corrupt, or was built for another GPU / TensorRT / model."""


@dataclass
class EngineInfo:
    """What an engine was built for; stored as ``<engine>.json``."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    onnx_sha256: str
    task: str
    precision: str
    profile: dict
    built_at: str
    engine_sha256: str = ""  # of the engine file itself, checked before it is deserialized

    @staticmethod
    def sidecar(engine_path: str | Path) -> Path:
        return Path(str(engine_path) + ".json")

    def save(self, engine_path: str | Path) -> None:
        self.sidecar(engine_path).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, engine_path: str | Path) -> EngineInfo:
        path = cls.sidecar(engine_path)
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise EngineError(
                f"{path}: missing or unreadable engine description ({exc}); rebuild the engine with `srdb build-engine`"
            ) from exc


def current_platform() -> tuple[str, str, str]:
    """(TensorRT version, GPU name, compute capability) of this machine."""
    import tensorrt as trt
    import torch

    if not torch.cuda.is_available():
        raise EngineError("TensorRT needs a CUDA GPU, and torch sees none")
    major, minor = torch.cuda.get_device_capability()
    return trt.__version__, torch.cuda.get_device_name(), f"{major}.{minor}"


def engine_mismatch(engine_path: str | Path, onnx_path: str | Path | None = None) -> str | None:
    """Why the engine cannot be used here (None when it matches this machine and the ONNX).

    An engine is native code to TensorRT: its sha256 must match the one its description recorded when it was
    built, or it is not deserialized at all (a swapped or damaged file is refused).
    """
    info = EngineInfo.load(engine_path)
    if not info.engine_sha256:
        return "its description records no engine checksum (built by an older srdb_ros)"
    if file_digest(engine_path) != info.engine_sha256:
        return "the engine file does not match the checksum in its description (damaged or replaced)"
    version, gpu, cc = current_platform()
    if info.tensorrt_version != version:
        return f"built with TensorRT {info.tensorrt_version}, this machine has {version}"
    if info.gpu_name != gpu or info.compute_capability != cc:
        return f"built for {info.gpu_name} (sm {info.compute_capability}), this GPU is {gpu} (sm {cc})"
    if onnx_path is not None and Path(onnx_path).is_file() and file_digest(onnx_path) != info.onnx_sha256:
        return f"built from another ONNX file than {onnx_path}"
    return None


def build_engine(
    onnx_path: str | Path,
    engine_path: str | Path,
    profile: dict | None = None,
    workspace_gib: float = 4.0,
    timing_cache: str | Path | None = None,
    fp16: bool = True,
) -> EngineInfo:
    """Build and serialize an engine; strongly typed when the ONNX is fp16, else with the FP16 builder flag."""
    import tensorrt as trt

    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    if not onnx_path.is_file():
        raise EngineError(f"{onnx_path}: ONNX file not found; create it with `srdb export`")
    version, gpu, cc = current_platform()
    profile = profile or DEFAULT_PROFILE
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    import onnx

    proto = onnx.load(str(onnx_path), load_external_data=False)
    fp16_graph = proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if fp16_graph else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"{onnx_path}: TensorRT cannot parse it: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if fp16 and not fp16_graph:
        if not hasattr(trt.BuilderFlag, "FP16"):  # removed in TensorRT 11: precision comes from the ONNX
            raise EngineError(
                f"{onnx_path}: TensorRT {trt.__version__} builds fp16 only from an fp16 ONNX; "
                f"export one with `srdb export --fp16` (or pass --fp32)"
            )
        config.set_flag(trt.BuilderFlag.FP16)
    opt_profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        opt_profile.set_shape(network.get_input(i).name, profile["min"], profile["opt"], profile["max"])
    config.add_optimization_profile(opt_profile)
    cache_path = Path(timing_cache) if timing_cache else engine_path.with_suffix(".timing.cache")
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError(f"{onnx_path}: TensorRT engine build failed (see the TensorRT log above)")
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(engine_path) as tmp:
        tmp.write_bytes(bytes(serialized))
    cache_path.write_bytes(bytes(config.get_timing_cache().serialize()))
    info = EngineInfo(
        tensorrt_version=version,
        gpu_name=gpu,
        compute_capability=cc,
        onnx_sha256=file_digest(onnx_path),
        task=onnx_task(onnx_path) or "unknown",
        precision="fp16" if (fp16 or fp16_graph) else "fp32",
        profile={k: list(v) for k, v in profile.items()},
        built_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
        engine_sha256=file_digest(engine_path),
    )
    info.save(engine_path)
    LOG.info("built %s in %.1f s (%s, %s)", engine_path, time.perf_counter() - start, gpu, info.precision)
    return info


def parse_shape(text: str) -> tuple[int, ...]:
    """'1x3x984x1240' -> (1, 3, 984, 1240)."""
    try:
        return tuple(int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise ValueError(f"bad shape {text!r}; write NxCxHxW, e.g. 1x3x984x1240") from exc


@dataclass
class BuildEngineOptions:
    onnx: str
    output: str
    min_shape: str = "1x3x64x64"
    opt_shape: str = "1x3x984x1240"
    max_shape: str = "2x3x1088x1920"
    workspace_gib: float = 4.0
    timing_cache: str | None = None
    fp32: bool = False


def build_engine_command(opts: BuildEngineOptions) -> int:
    """``srdb build-engine``."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        print(
            "srdb build-engine: the `tensorrt` Python package is not installed here; install TensorRT 10 "
            "(pip install tensorrt) on the target GPU machine and run this command there"
        )
        return 2
    profile = {
        "min": parse_shape(opts.min_shape),
        "opt": parse_shape(opts.opt_shape),
        "max": parse_shape(opts.max_shape),
    }
    info = build_engine(opts.onnx, opts.output, profile, opts.workspace_gib, opts.timing_cache, fp16=not opts.fp32)
    print(
        f"wrote {opts.output} for {info.gpu_name} (TensorRT {info.tensorrt_version}, {info.precision}); "
        f"description in {EngineInfo.sidecar(opts.output)}"
    )
    print(f"input '{INPUT_NAME}' profile min {profile['min']} opt {profile['opt']} max {profile['max']}")
    return 0
