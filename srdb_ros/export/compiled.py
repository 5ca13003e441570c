"""Ahead-of-time compiled models (PyTorch AOTInductor packages): made once by ``srdb compile`` for one task and
input size, stored beside the weights, loaded in well under a second at every later start.

Like a TensorRT engine, a package is native code built for one machine: a ``<package>.json`` sidecar records the
device (GPU name and compute capability, or the CPU), the torch version, the precision, the weights' sha256 and the
package's own sha256, which is checked before the package is loaded. A package that does not match is not used.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..core.contract import PAD_MULTIPLE, TASKS, parse_size
from ..core.files import atomic_output, file_digest
from ..models import load_model_or_config
from .onnx_export import TaskGraph

LOG = logging.getLogger(__name__)


class CompiledModelError(RuntimeError):
    """A compiled package is missing, damaged, or was built for another device, torch or model."""


@dataclass
class CompiledInfo:
    """What a package was compiled for; stored as ``<package>.json``."""

    task: str
    height: int
    width: int
    device: str  # "cuda: <GPU name> (sm X.Y)" or "cpu: <machine>"
    torch_version: str
    precision: str
    weights_sha256: str
    package_sha256: str

    @staticmethod
    def sidecar(package: str | Path) -> Path:
        return Path(str(package) + ".json")

    @classmethod
    def load(cls, package: str | Path) -> CompiledInfo:
        try:
            return cls(**json.loads(cls.sidecar(package).read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise CompiledModelError(
                f"{cls.sidecar(package)}: missing or unreadable description ({exc}); compile again with `srdb compile`"
            ) from exc


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return f"cuda: {torch.cuda.get_device_name(device)} (sm {major}.{minor})"
    return f"cpu: {platform.machine()}"


def package_path(weights: str | Path, task: str, height: int, width: int, device: torch.device) -> Path:
    """Where ``srdb compile`` puts a package by default: beside the weights, named by task, size and device."""
    weights = Path(weights)
    return weights.with_name(f"{weights.stem}-{task}-{width}x{height}-{device.type}.pt2")


def compile_package(
    weights: str | Path,
    task: str,
    height: int,
    width: int,
    device: str = "cpu",
    precision: str = "fp32",
    output: str | Path | None = None,
) -> tuple[Path, CompiledInfo]:
    """AOT-compile the model for ``task`` at ``height`` x ``width`` (multiples of 4) on ``device``."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}")
    if height % PAD_MULTIPLE or width % PAD_MULTIPLE or min(height, width) < PAD_MULTIPLE:
        raise ValueError(f"height and width must be positive multiples of {PAD_MULTIPLE}, got {width}x{height}")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CompiledModelError("--device cuda: torch sees no CUDA GPU")
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    if dev.type == "cpu":
        dtype, precision = torch.float32, "fp32"
    model = load_model_or_config(str(weights)).to_deploy().eval().to(dev, dtype)
    graph = TaskGraph(model, task).eval()
    example = torch.rand(1, 3, height, width, device=dev, dtype=dtype)
    output = Path(output) if output else package_path(weights, task, height, width, dev)
    LOG.info("compiling %s (%s, %dx%d, %s) into %s; this takes minutes", weights, task, width, height, dev, output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), tempfile.TemporaryDirectory(prefix=f".{output.name}.", dir=output.parent) as staging:
        exported = torch.export.export(graph, (example,))
        built = Path(staging) / "package.pt2"  # AOTInductor wants the .pt2 suffix; renamed when complete
        torch._inductor.aoti_compile_and_package(exported, package_path=str(built))
        os.replace(built, output)
    info = CompiledInfo(
        task,
        height,
        width,
        device_description(dev),
        torch.__version__,
        precision,
        file_digest(weights),
        file_digest(output),
    )
    with atomic_output(CompiledInfo.sidecar(output)) as tmp:
        tmp.write_text(json.dumps(asdict(info), indent=2) + "\n")
    return output, info


def package_mismatch(package: str | Path, weights: str | Path, device: torch.device, precision: str) -> str | None:
    """Why a package cannot be used here for these weights (None when it can)."""
    info = CompiledInfo.load(package)
    if file_digest(package) != info.package_sha256:
        return "the package does not match the checksum in its description (damaged or replaced)"
    if info.torch_version != torch.__version__:
        return f"compiled with torch {info.torch_version}, this is {torch.__version__}"
    if info.device != device_description(device):
        return f"compiled for {info.device}, this is {device_description(device)}"
    if device.type == "cuda" and info.precision != precision:
        return f"compiled for {info.precision}, the backend runs {precision}"
    if info.weights_sha256 != file_digest(weights):
        return "compiled from other weights"
    return None


def load_package(package: str | Path, weights: str | Path, device: torch.device, precision: str):
    """(CompiledInfo, runner) of a package that matches, else :class:`CompiledModelError` saying why not."""
    package = Path(package)
    if not package.is_file():
        raise CompiledModelError(f"{package}: compiled package not found; make it with `srdb compile`")
    reason = package_mismatch(package, weights, device, precision)
    if reason:
        raise CompiledModelError(f"{package}: not used: {reason}; compile it again with `srdb compile`")
    return CompiledInfo.load(package), torch._inductor.aoti_load_package(str(package))


@dataclass
class CompileOptions:
    size: str
    model: str  # a .safetensors file (the CLI fills in the bundled student)
    task: str = "deblur"
    device: str = "cpu"
    precision: str = "fp16"
    output: str | None = None


def compile_command(opts: CompileOptions) -> int:
    """``srdb compile``."""
    width, height = parse_size(opts.size)
    path, info = compile_package(opts.model, opts.task, height, width, opts.device, opts.precision, opts.output)
    print(f"wrote {path} ({info.task}, {width}x{height}, {info.device}, torch {info.torch_version}, {info.precision})")
    return 0
