"""ONNX export of the deploy-form model, one graph per task, checked against PyTorch with ONNX Runtime."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..core.contract import BLUR_OUTPUT, INPUT_NAME, PAD_MULTIPLE, TASKS, full_scale, output_tasks, task_outputs
from ..core.files import atomic_output, file_digest
from ..models import SRDeblurNet, load_model_or_config

LOG = logging.getLogger(__name__)

OPSET = 17  # TensorRT 10's ONNX parser supports opsets 9-20; 17 has everything this graph uses
PARITY_TOLERANCE = 1e-3


class TaskGraph(nn.Module):
    """A single-task view of the model: 1x3xHxW (H, W multiples of 4) in, the task's outputs out."""

    def __init__(self, model: SRDeblurNet, task: str) -> None:
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}")
        self.model = model
        self.task = task

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(image, self.task)
        images = tuple(full_scale(out.deblur) if t == "deblur" else out.sr for t in output_tasks(self.task))
        return images if out.blur is None else (*images, out.blur)


@dataclass
class ExportResult:
    path: Path
    task: str
    max_abs_diff: float


def export_onnx(
    model: SRDeblurNet,
    task: str,
    output: str | Path,
    sample_size: tuple[int, int] = (64, 96),
    check: bool = True,
    fp16: bool = False,
    weights_sha256: str = "",
) -> ExportResult:
    """Export ``model`` (converted to deploy form) for ``task`` with dynamic height/width.

    ``sample_size`` is the (H, W) traced; the graph accepts any multiple of 4. With ``check`` the file is
    validated by ``onnx.checker`` and run by ONNX Runtime against PyTorch on a random input of another size.
    """
    import onnx

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    model = model.to_deploy().eval().float().cpu()
    graph = TaskGraph(model, task).eval()  # torch.onnx.export restores the mode it finds: keep it eval
    h, w = (s + (-s) % PAD_MULTIPLE for s in sample_size)
    dummy = torch.rand(1, 3, h, w)
    if fp16:  # a strongly typed fp16 graph, as TensorRT 10 wants for fp16 engines
        graph, dummy = graph.half(), dummy.half()
    names = task_outputs(task, blur=model.blur_head is not None)
    dynamic = {INPUT_NAME: {0: "batch", 2: "height", 3: "width"}}
    dynamic.update({n: {0: "batch", 2: f"{n}_height", 3: f"{n}_width"} for n in names if n != BLUR_OUTPUT})
    dynamic.update({BLUR_OUTPUT: {0: "batch"}} if BLUR_OUTPUT in names else {})
    with atomic_output(output) as tmp:  # a unique name beside the output: never a half-written .onnx
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                graph,
                (dummy,),
                str(tmp),
                input_names=[INPUT_NAME],
                output_names=names,
                dynamic_axes=dynamic,
                opset_version=OPSET,
                dynamo=False,
            )
        proto = onnx.load(str(tmp))
        meta = {
            "task": task,
            "srdb_config": json.dumps(model.config.to_dict()),
            "multiple": str(PAD_MULTIPLE),
            "upscale": str(model.upscale),
            "precision": "fp16" if fp16 else "fp32",
        }
        if weights_sha256:  # the weights file it was exported from (a graph shipped beside them is used as is)
            meta["weights_sha256"] = weights_sha256
        onnx.helper.set_model_props(proto, meta)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
    diff = (
        check_parity(model, output, task, size=(h + 8, w + 12), tolerance=0.05 if fp16 else PARITY_TOLERANCE)
        if check
        else float("nan")
    )
    return ExportResult(output, task, diff)


def check_parity(
    model: SRDeblurNet, onnx_path: str | Path, task: str, size: tuple[int, int], tolerance: float = PARITY_TOLERANCE
) -> float:
    """Run the ONNX file with ONNX Runtime (CPU) and PyTorch on one random input; return max |diff|."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    in_type = session.get_inputs()[0].type
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = [t.float().numpy() for t in TaskGraph(model.float(), task).eval()(x)]
    feed = x.numpy().astype(np.float16 if "float16" in in_type else np.float32)
    got = session.run(None, {INPUT_NAME: feed})
    diff = max(float(np.abs(g.astype(np.float32) - e).max()) for g, e in zip(got, expected))
    if not diff <= tolerance:
        raise RuntimeError(f"{onnx_path}: ONNX Runtime differs from PyTorch by {diff:.3g} (limit {tolerance:g})")
    return diff


def onnx_metadata(path: str | Path) -> dict[str, str]:
    """An exported graph's metadata (task, srdb_config, weights_sha256, ...); empty for an unreadable file."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - onnx raises its own types for damaged files
        return {}
    return {p.key: p.value for p in proto.metadata_props}


def onnx_task(path: str | Path) -> str | None:
    """The task recorded in an exported graph's metadata (None if absent)."""
    return onnx_metadata(path).get("task")


def cache_dir() -> Path:
    root = os.environ.get("SRDB_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"), "srdb_ros"
    )
    return Path(root)


def shipped_onnx(weights: str | Path, task: str) -> Path:
    """Where a graph exported for ``weights`` is looked for beside it: ``<stem>_<task>.onnx``."""
    weights = Path(weights)
    return weights.with_name(f"{weights.stem}_{task}.onnx")


def _writable_cache(directory: Path) -> Path:
    """``directory`` if it can be made and written; else a temporary folder of this process, with one warning
    (read-only homes and containers: the node runs anyway)."""
    global _FALLBACK_CACHE
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if os.access(directory, os.W_OK):
            return directory
        reason = "not writable"
    except OSError as exc:
        reason = exc.strerror or str(exc)
    if _FALLBACK_CACHE is None:
        _FALLBACK_CACHE = Path(tempfile.mkdtemp(prefix="srdb_onnx_"))
        LOG.warning(
            "ONNX cache %s cannot be used (%s); exporting into %s for this run (set cache_dir or SRDB_CACHE_DIR to "
            "a writable folder, or ship <weights>_<task>.onnx beside the weights)",
            directory,
            reason,
            _FALLBACK_CACHE,
        )
    return _FALLBACK_CACHE


_FALLBACK_CACHE: Path | None = None


def ensure_onnx(weights: str | Path, task: str, directory: str | Path | None = None) -> Path:
    """ONNX for ``weights``/``task``: one shipped beside the weights (``<stem>_<task>.onnx``, exported from these
    very weights), else exported once into the cache (keyed by the weights' hash; a temporary folder when the
    cache cannot be written). Each cache entry has a ``.sha256`` sidecar written after it; an entry that does not
    match its sidecar (damaged, or cut short by a crash) is exported again, so a bad cache never becomes a
    permanent start failure."""
    full_digest = file_digest(weights)
    shipped = shipped_onnx(weights, task)
    if shipped.is_file() and onnx_metadata(shipped).get("weights_sha256") == full_digest:
        return shipped
    digest = full_digest[:16]
    path = _writable_cache(Path(directory or cache_dir() / "onnx")) / f"{Path(weights).stem}-{digest}-{task}.onnx"
    checksum = path.with_name(path.name + ".sha256")
    if path.is_file():
        recorded = checksum.read_text().strip() if checksum.is_file() else None
        if recorded == file_digest(path):
            return path
        why = "does not match its checksum (damaged or incomplete)" if recorded else "has no checksum record"
        LOG.warning("cached %s %s; exporting it again", path, why)
    LOG.info("exporting %s (%s) to %s", weights, task, path)
    export_onnx(load_model_or_config(weights), task, path, check=False, weights_sha256=full_digest)
    with atomic_output(checksum) as tmp:
        tmp.write_text(file_digest(path) + "\n")
    return path


@dataclass
class ExportOptions:
    output: str
    model: str | None = None  # default: the bundled student
    random_init: bool = False
    task: str = "deblur"
    fp16: bool = False


def export_command(opts: ExportOptions) -> int:
    """``srdb export``."""
    model = load_model_or_config(opts.model, opts.random_init)
    source = file_digest(opts.model) if opts.model and not opts.random_init else ""
    result = export_onnx(model, opts.task, opts.output, fp16=opts.fp16, weights_sha256=source)
    print(
        f"wrote {result.path} (task {result.task}, opset {OPSET}, inputs '{INPUT_NAME}' 1x3xHxW, "
        f"outputs {task_outputs(result.task, blur=model.blur_head is not None)})"
    )
    print(f"onnx.checker: ok; ONNX Runtime vs PyTorch max abs diff: {result.max_abs_diff:.3g}")
    return 0
