"""``srdb train``: run the pipeline's stages in order, resumable, within a time budget.

Run folder: ``<stage>/last.pt`` (resumable checkpoint, written atomically), ``<stage>/<model>.safetensors`` and
``<stage>/done.json`` when finished, ``metrics.csv`` (one row per logged step), ``validation.csv`` (after
each stage), ``tb/`` TensorBoard logs, ``schedule.json`` (what actually ran, on what hardware).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import yaml

from ..models import load_model
from .config import STAGES, TEACHER_STAGES, load_config
from .loop import Context, hardware
from .stages import STAGE_FUNCS, preflight, validate

LOG = logging.getLogger(__name__)


@dataclass
class TrainOptions:
    """What ``srdb train`` asks for (see its --help)."""

    config: Path
    output: Path | None = None
    stages: list[str] | None = None
    resume: bool = False
    time_budget: float | None = None  # minutes for the whole invocation
    teacher_init: str | None = None
    student_init: str | None = None
    data_root: str | None = None


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


def run(opts: TrainOptions) -> dict:
    """Run the pipeline's stages in order; returns the per-stage summary.

    ``time_budget`` (minutes) bounds the whole invocation: the training stages share what is left after a
    reserve for validation and export (``time_reserve``, a fraction) by their ``share`` values, so the run
    always ends with a validated, exported student. ``teacher_init`` / ``student_init`` (srdb
    ``.safetensors``) set where the teacher stages and the distillation start.
    """
    cfg = load_config(opts.config, opts.data_root)
    if opts.teacher_init:
        cfg.stages["init"].teacher_init = cfg.stages["distill"].teacher_init = str(opts.teacher_init)
    if opts.student_init:
        cfg.stages["distill"].student_init = str(opts.student_init)
    time_budget, resume, stages = opts.time_budget, opts.resume, opts.stages
    wanted = stages or cfg.enabled_stages()
    unknown = [s for s in wanted if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; stages are {list(STAGES)}")
    if time_budget is not None and time_budget <= 0:
        raise ValueError("--time-budget must be a positive number of minutes")
    order = [s for s in STAGES if s in wanted]
    preflight(cfg, order)  # every path of every stage, before a run folder exists
    rank, world, device = _setup_distributed()
    run_dir = Path(opts.output or Path("runs") / cfg.name)
    if rank == 0:
        if run_dir.exists() and any(run_dir.iterdir()) and not resume:
            raise FileExistsError(f"{run_dir} already holds a run; pass --resume to continue it or --output NEW_DIR")
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    if world > 1:
        dist.barrier()
    torch.manual_seed(cfg.seed + rank)
    writer = None
    if rank == 0:
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(run_dir / "tb"))
        except ImportError:
            LOG.warning("tensorboard is not installed; no TensorBoard logs")
    ctx = Context(cfg, run_dir, device, rank, world, writer)
    if time_budget is not None:
        ctx.deadline = time.monotonic() + 60.0 * time_budget
        ctx.reserve = 60.0 * time_budget * cfg.time_reserve
    summary = {}
    for i, stage in enumerate(order):
        ctx.pending = tuple(s for s in order[i:] if not (ctx.stage_dir(s) / "done.json").is_file())
        done = ctx.stage_dir(stage) / "done.json"
        if done.is_file():
            LOG.info("%s: already done, skipping", stage)
            summary[stage] = json.loads(done.read_text())
            continue  # validated when it ran (validation.csv)
        summary[stage] = STAGE_FUNCS[stage](ctx, cfg.stages[stage])
        if stage not in ("export", "span_baseline") and rank == 0 and cfg.validation.enabled:
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
            f"{k.removesuffix('_psnr')} {v:.2f}/{val[k.replace('_psnr', '_baseline_psnr')]:.2f}"
            for k, v in val.items()
            if k.endswith("_psnr") and k.replace("_psnr", "_baseline_psnr") in val
        )
        print(f"{stage:13s} {str(info.get('steps', '-')):>6s} {str(info.get('seconds', '-')):>8s}  {scores}")
