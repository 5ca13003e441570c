"""The multi-stage training pipeline (Fig. 5 of the paper), resumable at any step.

Stages, in order (each reads the previous stage's weights from the run folder and writes its own):
  init          optional start from reference MIMO-UNet / SPAN checkpoints (teacher)
  phase1        deblurring with the shared encoder
  phase2        encoder and deblur branch frozen; fitting conv + SPAN trained for x4 SR
  dann          both tasks on EO + domain classifiers (gradient reversal) against unlabelled IR, lr 1e-5
  distill       teacher -> student (feature + pseudo + GT loss)
  student_dann  student fine-tune + DANN
  export        deploy form -> safetensors -> ONNX per task -> TensorRT engine where TensorRT is present

Run folder: ``<stage>/last.pt`` (resumable checkpoint, written atomically), ``<stage>/<model>.safetensors`` and
``<stage>/done.json`` when finished, ``metrics.csv`` (one row per logged step), ``validation.csv`` (after
each stage), ``tb/`` TensorBoard logs, ``schedule.json`` (what actually ran, on what hardware).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import json
import logging
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import yaml
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from ..data.blur import synthesizer_for
from ..data.datasets import (
    GoProDataset,
    MixtureDataset,
    SRDataset,
    SyntheticBlurDataset,
    UnlabeledDataset,
    collate,
)
from ..evaluation.scoring import deblur_pairs_from_sharp, score, sr_pairs_from_hr
from ..models import (
    SRDeblurNet,
    build_model,
    load_mimo_unet_reference,
    load_model,
    load_span_reference,
    save_model,
)
from ..models.span import refresh_fused
from .objectives import DANNObjective, DistillObjective, Phase1Objective, Phase2Objective, StandaloneSRObjective

LOG = logging.getLogger(__name__)

STAGES = ("init", "phase1", "phase2", "dann", "distill", "student_dann", "export", "span_baseline")
DEFAULT_OFF = ("span_baseline",)  # run only when asked for (--stages span_baseline)
TEACHER_STAGES = ("init", "phase1", "phase2", "dann")
TRAINING_STAGES = ("phase1", "phase2", "dann", "distill", "student_dann", "span_baseline")
INIT_FILE_KEYS = {"init": ("mimo_unet", "span", "teacher_init"), "distill": ("teacher_init", "student_init")}
VALIDATION_BLUR_SEED = 4321


def resolve_path(value: str, base: Path) -> str:
    """Relative data paths are looked up from the working directory, then from the package share folder."""
    if not value:
        return value
    path = Path(value)
    if path.is_absolute() or path.exists():
        return str(path)
    return str(base / path)


DATA_PATH_KEYS = ("eo_train", "ir_train", "sr_train", "sr_lr_train", "eo_val", "ir_val", "gopro_root")


def load_config(path: str | Path, data_root: str | Path | None = None) -> dict:
    """A training config with its data resolved: paths from the working directory or the share folder, and
    ``.txt`` splits read into image lists relative to ``data.root`` (or ``data_root``, which overrides it)."""
    from ..data.datasets import read_split
    from ..resources import share_dir

    cfg = yaml.safe_load(Path(path).read_text()) or {}
    base = share_dir()
    data = cfg.setdefault("data", {})
    root = str(data_root or data.get("root") or "")
    if root:
        data["root"] = root = resolve_path(root, base)

    def expand(value: str) -> list[str]:
        resolved = resolve_path(value, base)
        if resolved.endswith(".txt") and Path(resolved).is_file():
            return [str(p) for p in read_split(resolved, root or None)]
        return [resolved]

    for key in DATA_PATH_KEYS:
        value = data.get(key)
        if isinstance(value, list):
            data[key] = [p for v in value for p in expand(v)]
        elif isinstance(value, str) and value:
            paths = expand(value)
            data[key] = paths if value.endswith(".txt") else paths[0]
    stages = cfg.get("stages", {})
    for stage, keys in INIT_FILE_KEYS.items():
        section = stages.get(stage) or {}
        for key in keys:
            if section.get(key):
                section[key] = resolve_path(section[key], base)
    return cfg


@dataclass
class Context:
    cfg: dict
    run_dir: Path
    device: torch.device
    rank: int = 0
    world: int = 1
    writer: object = None
    deadline: float | None = None  # time.monotonic() by which the whole run must have finished
    reserve: float = 0.0  # seconds of the budget kept for validation and export
    pending: tuple[str, ...] = ()  # training stages still to run in this invocation

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def stage_dir(self, stage: str) -> Path:
        return self.run_dir / stage


class StepBatches(Dataset):
    """Item ``step`` is the whole batch of that step for this rank: every draw is a function of the step."""

    def __init__(self, sources: dict[str, Dataset], batch: int, rank: int, world: int) -> None:
        self.sources, self.batch, self.rank, self.world = sources, batch, rank, world

    def __len__(self) -> int:
        return 1 << 40

    def __getitem__(self, step: int) -> dict:
        first = (step * self.world + self.rank) * self.batch
        return {name: collate([ds[first + k] for k in range(self.batch)]) for name, ds in self.sources.items()}


def _to_device(batch, device, channels_last: bool = False):
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        return batch.contiguous(memory_format=torch.channels_last) if channels_last and batch.dim() == 4 else batch
    if isinstance(batch, dict):
        return {k: _to_device(v, device, channels_last) for k, v in batch.items()}
    return tuple(_to_device(v, device, channels_last) for v in batch)


def _atomic_save(obj: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    tmp.replace(path)


def _steps(section: dict, dataset_len: int) -> int:
    """``steps`` directly, or ``epochs`` x (dataset size / batch)."""
    if "steps" in section:
        return int(section["steps"])
    return int(section.get("epochs", 0) * max(1, dataset_len // section.get("batch", 1)))


# -- data -------------------------------------------------------------------------------------------------------
def blur_synthesizer(ctx: Context, domain: str, seed: int):
    """The configured EO camera blur (``data.blur``) or IR thermal smear (``data.ir_blur``)."""
    data = ctx.cfg["data"]
    return synthesizer_for(domain, data.get("ir_blur" if domain == "ir" else "blur") or {}, seed)


def deblur_source(ctx: Context, crop: int, seed: int) -> Dataset:
    """EO blur pairs (GOPRO or synthetic), mixed with thermal-blur IR pairs when ``data.ir_deblur_share`` > 0."""
    data = ctx.cfg["data"]
    if data.get("gopro_root"):
        eo = GoProDataset(data["gopro_root"], data.get("gopro_split", "train"), crop, seed)
    else:
        eo = SyntheticBlurDataset(data["eo_train"], crop, seed, blur_synthesizer(ctx, "eo", seed))
    share = float(data.get("ir_deblur_share", 0.0))
    if share <= 0:
        return eo
    ir = SyntheticBlurDataset(data["ir_train"], crop, seed + 11, blur_synthesizer(ctx, "ir", seed + 11))
    return MixtureDataset([eo, ir], [1.0 - share, share], seed)


def sr_source(ctx: Context, lr_crop: int, seed: int) -> Dataset:
    data = ctx.cfg["data"]
    return SRDataset(
        data.get("sr_train") or data["eo_train"],
        data.get("sr_lr_train") or None,
        4,
        lr_crop,
        seed,
        data.get("sr_blur_prob", 0.0),
        blur_synthesizer(ctx, "eo", seed + 7),
    )


def target_source(ctx: Context, crop: int, seed: int) -> Dataset:
    return UnlabeledDataset(ctx.cfg["data"]["ir_train"], crop, seed)


# -- the training loop -------------------------------------------------------------------------------------------
def stage_budget(ctx: Context, stage: str, section: dict) -> float | None:
    """Seconds this stage may train: its ``minutes``, and/or its ``share`` of what is left of ``--time-budget``."""
    budgets = []
    if section.get("minutes") is not None:
        budgets.append(60.0 * float(section["minutes"]))
    if ctx.deadline is not None:
        stages = ctx.cfg.get("stages", {})
        pending = [s for s in ctx.pending if s in TRAINING_STAGES] or [stage]
        shares = {s: float((stages.get(s) or {}).get("share", 1.0)) for s in pending}
        total = sum(shares.values()) or 1.0
        left = ctx.deadline - time.monotonic() - ctx.reserve
        budgets.append(max(0.0, left) * shares.get(stage, 1.0) / total)
    return min(budgets) if budgets else None


def cosine_lr(base: float, progress: float, final_ratio: float) -> float:
    """Cosine decay from ``base`` to ``base * final_ratio`` over progress in [0, 1]."""
    floor = base * final_ratio
    return floor + (base - floor) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _speed_setup(ctx: Context, objective: torch.nn.Module) -> tuple[torch.nn.Module, contextlib.AbstractContextManager]:
    """channels_last (CPU and CUDA); on CUDA also cuDNN autotuning, bf16 autocast with fp32 master weights and an
    optional torch.compile."""
    if ctx.cfg.get("channels_last", True):
        objective.to(memory_format=torch.channels_last)
    if ctx.device.type != "cuda":
        return objective, contextlib.nullcontext()
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    amp = str(ctx.cfg.get("amp", "bf16"))
    if amp not in ("bf16", "fp16", "none"):
        raise ValueError(f"amp must be bf16, fp16 or none, not {amp!r}")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    autocast = torch.autocast("cuda", dtype=dtype) if dtype is not None else contextlib.nullcontext()
    forward = torch.compile(objective) if ctx.cfg.get("compile", False) else objective
    return forward, autocast


def _stop_everywhere(ctx: Context, stop: bool) -> bool:
    """All ranks stop at the same step when any one runs out of time."""
    if ctx.world == 1:
        return stop
    flag = torch.tensor([1.0 if stop else 0.0], device=ctx.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def train_stage(
    ctx: Context, stage: str, objective: torch.nn.Module, sources: dict[str, Dataset], section: dict
) -> dict:
    """Adam + cosine decay over the stage's steps and/or time budget; resumes from ``<stage>/last.pt``.

    With a time budget (``minutes``, or a share of ``--time-budget``) the learning rate follows whichever of
    step and time progress is further along, and the stage ends at its budget with a checkpoint; without
    one it runs exactly ``steps`` (or ``epochs``). Returns the stage record (steps, seconds, step time, logs).
    """
    from tqdm import tqdm

    budget = stage_budget(ctx, stage, section)
    has_steps = "steps" in section or "epochs" in section
    if budget is None and not has_steps:
        raise ValueError(f"stage {stage}: give steps, epochs or minutes (or run with --time-budget)")
    steps = _steps(section, len(next(iter(sources.values())))) if has_steps else 1 << 40
    lr = float(section.get("lr", 1e-4))
    final_ratio = float(section.get("final_lr_ratio", 0.01))
    stage_dir = ctx.stage_dir(stage)
    stage_dir.mkdir(parents=True, exist_ok=True)
    objective.to(ctx.device).train()
    params = [p for p in objective.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    start, elapsed_before = 0, 0.0
    ckpt_path = stage_dir / "last.pt"
    if ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        objective.load_state_dict(ckpt["objective"])
        optimizer.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["torch_rng"])
        start = int(ckpt["step"])
        elapsed_before = float(ckpt.get("elapsed", 0.0))
        budget = None if budget is None else budget + elapsed_before
        LOG.info("%s: resuming at step %d after %.0f s", stage, start, elapsed_before)
    forward, autocast = _speed_setup(ctx, objective)
    model = DistributedDataParallel(forward, find_unused_parameters=True) if ctx.world > 1 else forward
    workers = int(ctx.cfg.get("workers", 0))
    loader = DataLoader(
        StepBatches(sources, int(section.get("batch", 1)), ctx.rank, ctx.world),
        sampler=range(start, steps),
        batch_size=None,
        num_workers=workers,
        pin_memory=ctx.device.type == "cuda",
        prefetch_factor=4 if workers else None,
        persistent_workers=False,
    )
    channels_last = bool(ctx.cfg.get("channels_last", True))
    every = int(ctx.cfg.get("checkpoint_every", 100))
    log_every = int(ctx.cfg.get("log_every", 10))
    logs: dict = {}
    done = start
    t0 = time.perf_counter() - elapsed_before

    def elapsed() -> float:
        return time.perf_counter() - t0

    def progress(step: int) -> float:
        by_steps = step / steps if has_steps else 0.0
        return max(by_steps, elapsed() / budget if budget else 0.0)

    def save() -> None:
        if ctx.is_main:
            _atomic_save(
                {
                    "objective": objective.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "step": done,
                    "elapsed": elapsed(),
                    "torch_rng": torch.get_rng_state(),
                },
                ckpt_path,
            )

    total = steps if has_steps and budget is None else None
    bar = tqdm(total=total, initial=start, desc=stage, disable=not ctx.is_main, dynamic_ncols=True)
    first_step_at = None
    for step, batch in zip(range(start, steps), loader):
        if _stop_everywhere(ctx, budget is not None and elapsed() >= budget):
            break
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(lr, progress(step), final_ratio)
        batch = _to_device(batch, ctx.device, channels_last)
        with autocast:
            loss, logs = model(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        bar.update(1)
        done = step + 1
        if first_step_at is None:
            first_step_at = (done, elapsed())
        if ctx.is_main and (done % log_every == 0 or done == steps):
            row = {
                "stage": stage,
                "step": done,
                "loss": float(loss.detach()),
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": round(elapsed(), 2),
                **logs,
            }
            _append_csv(ctx.run_dir / "metrics.csv", row)
            if ctx.writer is not None:
                for key, value in row.items():
                    if isinstance(value, float):
                        ctx.writer.add_scalar(f"{stage}/{key}", value, done)
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
        if done % every == 0:
            save()
    save()
    bar.close()
    if ctx.world > 1:
        dist.barrier()
    seconds = elapsed()
    timed = (done - first_step_at[0], seconds - first_step_at[1]) if first_step_at else (0, 0.0)
    return {
        "steps": done,
        "seconds": round(seconds, 1),
        "step_ms": round(1000 * timed[1] / timed[0], 1) if timed[0] else None,
        "budget_s": round(budget, 1) if budget is not None else None,
        "stopped_by": "time" if done < steps else "steps",
        "lr": lr,
        "batch": int(section.get("batch", 1)),
        "hardware": hardware(ctx),
        **{k: v for k, v in logs.items()},
    }


def hardware(ctx: Context) -> dict:
    """What a stage ran on (recorded per stage: stages of one run may run on different machines)."""
    return {
        "device": str(ctx.device),
        "world_size": ctx.world,
        "cpu": platform.processor() or platform.machine(),
        "gpu": torch.cuda.get_device_name(ctx.device) if ctx.device.type == "cuda" else None,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "amp": str(ctx.cfg.get("amp", "bf16")) if ctx.device.type == "cuda" else "fp32",
    }


def _append_csv(path: Path, row: dict) -> None:
    exists = path.is_file()
    fields = list(row)
    if exists:
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
        fields = header + [k for k in row if k not in header]
        if fields != header:  # new columns: rewrite with the wider header
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
            with open(path, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=fields)
                w.writeheader()
                w.writerows(rows)
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        if not exists:
            w.writeheader()
        w.writerow(row)


# -- stages ------------------------------------------------------------------------------------------------------
def _previous(ctx: Context, stage: str, role: str) -> SRDeblurNet:
    """The newest finished model of ``role`` (teacher/student) from stages before ``stage``."""
    order = STAGES[: STAGES.index(stage)]
    for prev in reversed(order):
        path = ctx.stage_dir(prev) / f"{role}.safetensors"
        if (ctx.stage_dir(prev) / "done.json").is_file() and path.is_file():
            return load_model(path)
    init = (ctx.cfg.get("stages", {}).get("distill") or {}).get(f"{role}_init", "")
    if init:
        LOG.info("%s: %s from %s", stage, role, init)
        return load_model(init)
    if role == "teacher":
        raise FileNotFoundError(
            f"stage {stage} needs a teacher: run the teacher stages first, or set stages.distill.teacher_init"
        )
    return build_model(ctx.cfg.get("student", "student"))


def stage_init(ctx: Context, section: dict) -> dict:
    """The teacher's starting point: a srdb ``.safetensors`` (``teacher_init``), reference checkpoints, or random."""
    if section.get("teacher_init"):
        model = load_model(section["teacher_init"])
        origin = {"teacher_init": section["teacher_init"]}
    else:
        model = build_model(ctx.cfg.get("teacher", "teacher"))
        if section.get("mimo_unet"):
            load_mimo_unet_reference(model, section["mimo_unet"])
        if section.get("span"):
            load_span_reference(model, section["span"])
        origin = {"mimo_unet": section.get("mimo_unet") or "random init", "span": section.get("span") or "random init"}
    _finish(ctx, "init", model, "teacher", {"from": origin})
    return {"from": origin}


def stage_phase1(ctx: Context, section: dict) -> dict:
    model = _previous(ctx, "phase1", "teacher")
    info = train_stage(
        ctx,
        "phase1",
        Phase1Objective(model),
        {"deblur": deblur_source(ctx, section.get("crop", 256), ctx.cfg["seed"] + 1)},
        section,
    )
    _finish(ctx, "phase1", model, "teacher", info)
    return info


def stage_phase2(ctx: Context, section: dict) -> dict:
    model = _previous(ctx, "phase2", "teacher")
    objective = Phase2Objective(model)
    source = sr_source(ctx, section.get("lr_crop", 64), ctx.cfg["seed"] + 2)
    if not (ctx.stage_dir("phase2") / "last.pt").is_file():
        _init_sr_branch(model, section, "phase2")
    info = train_stage(ctx, "phase2", objective, {"sr": source}, section)
    model.requires_grad_(True)
    refresh_fused(model.span)
    _finish(ctx, "phase2", model, "teacher", info)
    return info


def _init_sr_branch(model: SRDeblurNet, section: dict, stage: str) -> None:
    """Optional starting point for a fresh SPAN (config ``span_init``)."""
    if section.get("span_init") == "bilinear":
        bilinear_span_init(model.span)
        LOG.info("%s: SPAN initialised as a bilinear x%d upsampler of its input", stage, model.upscale)


@torch.no_grad()
def bilinear_span_init(span, other_scale: float = 0.001) -> None:
    """Make a training-form SPAN start as a bilinear upsampler of its 3-channel input (architecture unchanged).

    Channels 0-2 of ``conv_1`` pass the normalised input through its 1x1 skip, ``conv_cat`` forwards them, and
    the upsampler's 3x3 conv holds the bilinear sub-pixel weights (half-pixel aligned, as image resizers are),
    divided by ``img_range`` and offset by the RGB mean. Every other path into the output is scaled by
    ``other_scale``, so the remaining (random) features start as a small perturbation that training grows.
    """
    s = span.upscale
    c1 = span.conv_1
    c1.sk.weight[:3].zero_()
    c1.sk.weight[:3, :3, 0, 0] = torch.eye(3)
    c1.sk.bias[:3].zero_()
    c1.conv[2].weight[:3].zero_()
    c1.conv[2].bias[:3].zero_()
    c1.update_params()
    span.conv_cat.weight[:3].zero_()
    span.conv_cat.weight[:3, :3, 0, 0] = torch.eye(3)
    span.conv_cat.bias[:3].zero_()
    up = span.upsampler[0]
    up.weight.mul_(other_scale)
    up.weight[:, :3].zero_()
    offsets = [(2 * i - (s - 1)) / (2 * s) for i in range(s)]  # sub-pixel centre offsets in input pixels
    taps = torch.zeros(s, 3)
    for i, d in enumerate(offsets):
        taps[i, 1] = 1 - abs(d)
        taps[i, 0 if d < 0 else 2] = abs(d)
    mean = span.mean.view(-1)
    for c in range(3):
        for i in range(s):
            for j in range(s):
                out = c * s * s + i * s + j
                up.weight[out, c] = torch.outer(taps[i], taps[j]) / span.img_range
                up.bias[out] = mean[c]


def _dann_sources(ctx: Context, section: dict, seed: int) -> dict[str, Dataset]:
    crop = section.get("crop", 256)
    return {
        "deblur": deblur_source(ctx, crop, seed),
        "sr": sr_source(ctx, section.get("lr_crop", crop // 4), seed + 1),
        "target": target_source(ctx, crop, seed + 2),
    }


def _run_dann(ctx: Context, stage: str, role: str, section: dict, seed: int) -> dict:
    model = _previous(ctx, stage, role)
    objective = DANNObjective(model, section.get("grl_coeff", 1.0), section.get("domain_weight", 1.0))
    info = train_stage(ctx, stage, objective, _dann_sources(ctx, section, seed), section)
    refresh_fused(model.span)
    _finish(ctx, stage, model, role, info)
    return info


def stage_dann(ctx: Context, section: dict) -> dict:
    return _run_dann(ctx, "dann", "teacher", section, ctx.cfg["seed"] + 3)


def stage_distill(ctx: Context, section: dict) -> dict:
    teacher = _previous(ctx, "distill", "teacher")
    student = _previous(ctx, "distill", "student")
    crop = section.get("crop", 256)
    sources = {
        "deblur": deblur_source(ctx, crop, ctx.cfg["seed"] + 4),
        "sr": sr_source(ctx, section.get("lr_crop", crop // 4), ctx.cfg["seed"] + 5),
    }
    if not (ctx.stage_dir("distill") / "last.pt").is_file() and not section.get("student_init"):
        if section.get("init_span_from_teacher", False):  # same SPAN in both: start from the teacher's
            student.span.load_state_dict(teacher.span.state_dict())
        _init_sr_branch(student, section, "distill")
    info = train_stage(ctx, "distill", DistillObjective(student, teacher), sources, section)
    refresh_fused(student.span)
    _finish(ctx, "distill", student, "student", info)
    return info


def stage_student_dann(ctx: Context, section: dict) -> dict:
    return _run_dann(ctx, "student_dann", "student", section, ctx.cfg["seed"] + 6)


def stage_export(ctx: Context, section: dict) -> dict:
    from ..export.onnx_export import export_onnx

    student = _previous(ctx, "export", "student")
    out = ctx.stage_dir("export")
    out.mkdir(parents=True, exist_ok=True)
    weights = save_model(student, out / "srdb_student.safetensors")
    info: dict = {"weights": str(weights), "onnx": {}, "engines": {}}
    for task in section.get("tasks", ["deblur", "sr", "both"]):
        result = export_onnx(copy.deepcopy(student), task, out / f"srdb_student_{task}.onnx")
        info["onnx"][task] = {"path": str(result.path), "max_abs_diff": result.max_abs_diff}
        if section.get("tensorrt", True):
            try:
                import tensorrt  # noqa: F401
            except ImportError:
                info["engines"][task] = "skipped: tensorrt is not installed"
                continue
            from ..export.tensorrt_build import build_engine

            build_engine(result.path, out / f"srdb_student_{task}.engine")
            info["engines"][task] = str(out / f"srdb_student_{task}.engine")
    (out / "done.json").write_text(json.dumps(info, indent=2))
    return info


def stage_span_baseline(ctx: Context, section: dict) -> dict:
    """A standalone SPAN trained on the same SR data, steps and initialisation as phase 2 (for Fig. 9)."""
    from ..models.span import SPAN, save_span

    phase2 = {**ctx.cfg.get("stages", {}).get("phase2", {}), **section}
    span = SPAN(feature_channels=build_model(ctx.cfg.get("teacher", "teacher")).config.span_channels)
    if phase2.get("span_init") == "bilinear":
        bilinear_span_init(span)
    source = sr_source(ctx, phase2.get("lr_crop", 64), ctx.cfg["seed"] + 2)
    info = train_stage(ctx, "span_baseline", StandaloneSRObjective(span), {"sr": source}, phase2)
    if ctx.is_main:
        save_span(span, ctx.stage_dir("span_baseline") / "span.safetensors")
        (ctx.stage_dir("span_baseline") / "done.json").write_text(json.dumps(info, indent=2, default=str))
    return info


STAGE_FUNCS = {
    "init": stage_init,
    "phase1": stage_phase1,
    "phase2": stage_phase2,
    "dann": stage_dann,
    "distill": stage_distill,
    "student_dann": stage_student_dann,
    "export": stage_export,
    "span_baseline": stage_span_baseline,
}


def _finish(ctx: Context, stage: str, model: SRDeblurNet, role: str, info: dict) -> None:
    if ctx.is_main:
        save_model(model, ctx.stage_dir(stage) / f"{role}.safetensors", {"stage": stage})
        ctx.stage_dir(stage).mkdir(parents=True, exist_ok=True)
        (ctx.stage_dir(stage) / "done.json").write_text(json.dumps(info, indent=2, default=str))
    if ctx.world > 1:
        dist.barrier()


# -- validation --------------------------------------------------------------------------------------------------
def validate(ctx: Context, stage: str, model: SRDeblurNet) -> dict:
    """PSNR/SSIM on the validation frames: deblur (synthetic blur) and x4 SR, EO and IR."""
    val = ctx.cfg.get("validation", {})
    data = ctx.cfg["data"]
    n, crop = int(val.get("max_images", 8)), int(val.get("crop", 256))
    results = {}
    model = model.to(ctx.device).eval()
    for domain, key in (("eo", "eo_val"), ("ir", "ir_val")):
        if not data.get(key):
            continue
        synth = blur_synthesizer(ctx, domain, VALIDATION_BLUR_SEED)
        pairs = deblur_pairs_from_sharp(data[key], max_images=n, crop=crop, synthesizer=synth)
        results[f"{domain}_deblur"] = score(model, pairs, "deblur")
        results[f"{domain}_sr"] = score(model, sr_pairs_from_hr(data[key], 4, n, crop), "sr")
    row = {"stage": stage, "model": model.config.name}
    for name, r in results.items():
        row.update(
            {
                f"{name}_psnr": round(r["model_psnr"], 3),
                f"{name}_ssim": round(r["model_ssim"], 4),
                f"{name}_baseline_psnr": round(r["baseline_psnr"], 3),
            }
        )
    _append_csv(ctx.run_dir / "validation.csv", row)
    return row


# -- entry point -------------------------------------------------------------------------------------------------
def _setup_distributed() -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    rank = dist.get_rank() if world > 1 else 0
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def run(
    config_path: str | Path,
    output: str | Path | None = None,
    stages: list[str] | None = None,
    resume: bool = False,
    time_budget: float | None = None,
    teacher_init: str | None = None,
    student_init: str | None = None,
    data_root: str | None = None,
) -> dict:
    """Run the pipeline's stages in order; returns the per-stage summary.

    ``time_budget`` (minutes) bounds the whole invocation: the training stages share what is left after a
    reserve for validation and export (``time_reserve``, a fraction) by their ``share`` values, so the run
    always ends with a validated, exported student. ``teacher_init`` / ``student_init`` (srdb
    ``.safetensors``) set where the teacher stages and the distillation start.
    """
    cfg = load_config(config_path, data_root)
    cfg.setdefault("seed", 0)
    stage_cfg = cfg.setdefault("stages", {})
    if teacher_init:
        for stage in ("init", "distill"):
            stage_cfg.setdefault(stage, {})["teacher_init"] = str(teacher_init)
    if student_init:
        stage_cfg.setdefault("distill", {})["student_init"] = str(student_init)
    rank, world, device = _setup_distributed()
    run_dir = Path(output or Path("runs") / cfg.get("name", Path(config_path).stem))
    if rank == 0:
        if run_dir.exists() and any(run_dir.iterdir()) and not resume:
            raise FileExistsError(f"{run_dir} already holds a run; pass --resume to continue it or --output NEW_DIR")
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    if world > 1:
        dist.barrier()
    torch.manual_seed(cfg["seed"] + rank)
    writer = None
    if rank == 0:
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(run_dir / "tb"))
        except ImportError:
            LOG.warning("tensorboard is not installed; no TensorBoard logs")
    ctx = Context(cfg, run_dir, device, rank, world, writer)
    if time_budget is not None:
        if time_budget <= 0:
            raise ValueError("--time-budget must be a positive number of minutes")
        ctx.deadline = time.monotonic() + 60.0 * time_budget
        ctx.reserve = 60.0 * time_budget * float(cfg.get("time_reserve", 0.15))
    wanted = stages or [s for s in STAGES if (stage_cfg.get(s) or {}).get("enabled", s not in DEFAULT_OFF)]
    unknown = [s for s in wanted if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; stages are {list(STAGES)}")
    order = [s for s in STAGES if s in wanted]
    summary = {}
    for i, stage in enumerate(order):
        ctx.pending = tuple(s for s in order[i:] if not (ctx.stage_dir(s) / "done.json").is_file())
        done = ctx.stage_dir(stage) / "done.json"
        if done.is_file():
            LOG.info("%s: already done, skipping", stage)
            summary[stage] = json.loads(done.read_text())
            continue  # validated when it ran (validation.csv)
        summary[stage] = STAGE_FUNCS[stage](ctx, stage_cfg.get(stage) or {})
        if (
            stage not in ("export", "span_baseline")
            and rank == 0
            and ctx.cfg.get("validation", {}).get("enabled", True)
        ):
            role = "teacher" if stage in TEACHER_STAGES else "student"
            summary[stage]["validation"] = validate(
                ctx, stage, load_model(ctx.stage_dir(stage) / f"{role}.safetensors")
            )
    if rank == 0:
        schedule_path = run_dir / "schedule.json"
        recorded = json.loads(schedule_path.read_text())["stages"] if schedule_path.is_file() else {}
        recorded.update(summary)
        schedule = {
            "hardware": hardware(ctx),  # of the last invocation; each training stage records its own
            "time_budget_minutes": time_budget,
            "stages": {stage: recorded[stage] for stage in STAGES if stage in recorded},
        }
        schedule_path.write_text(json.dumps(schedule, indent=2, default=str))
        if writer is not None:
            writer.close()
    if world > 1:
        dist.destroy_process_group()
    return summary


def print_table(summary: dict) -> None:
    print(f"{'stage':13s} {'steps':>6s} {'time s':>8s}  validation PSNR (model / baseline) dB")
    for stage, info in summary.items():
        val = info.get("validation", {}) if isinstance(info, dict) else {}
        scores = "  ".join(
            f"{k.removesuffix('_psnr')} {v:.2f}/{val.get(k.replace('_psnr', '_baseline_psnr'), float('nan')):.2f}"
            for k, v in val.items()
            if k.endswith("_psnr") and "baseline" not in k
        )
        print(f"{stage:13s} {str(info.get('steps', '-')):>6s} {str(info.get('seconds', '-')):>8s}  {scores}")


def main(args) -> int:
    """``srdb train``."""
    stages = args.stages.split(",") if args.stages else None
    summary = run(args.config, args.output, stages, args.resume, args.time_budget, args.teacher_init, args.student_init)
    if int(os.environ.get("RANK", "0")) == 0:
        print_table(summary)
    return 0
