"""The training loop shared by every stage: Adam with cosine decay, sized by steps and/or time, resumable at
any step (kill -9 included), on CPU, one GPU or DistributedDataParallel."""

from __future__ import annotations

import contextlib
import csv
import logging
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from ..core.files import atomic_output
from ..data.datasets import collate
from .config import TRAINING_STAGES, StageConfig, TrainConfig

LOG = logging.getLogger(__name__)


@dataclass
class Context:
    cfg: TrainConfig
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


def atomic_torch_save(obj: dict, path: Path) -> None:
    """``torch.save`` to a unique temporary file in the target folder, fsync, then rename over ``path``."""
    with atomic_output(path, mode=0o600) as tmp:
        torch.save(obj, tmp)


def stage_budget(ctx: Context, stage: str, section: StageConfig) -> float | None:
    """Seconds this stage may train: its ``minutes``, and/or its ``share`` of what is left of ``--time-budget``."""
    budgets = []
    if section.minutes is not None:
        budgets.append(60.0 * float(section.minutes))
    if ctx.deadline is not None:
        pending = [s for s in ctx.pending if s in TRAINING_STAGES] or [stage]
        shares = {s: float(ctx.cfg.stages[s].share) for s in pending}
        total = sum(shares.values()) or 1.0
        left = ctx.deadline - time.monotonic() - ctx.reserve
        budgets.append(max(0.0, left) * shares.get(stage, 1.0) / total)
    return min(budgets) if budgets else None


def cosine_lr(base: float, progress: float, final_ratio: float) -> float:
    """Cosine decay from ``base`` to ``base * final_ratio`` over progress in [0, 1]."""
    floor = base * final_ratio
    return floor + (base - floor) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _speed_setup(ctx: Context, objective: torch.nn.Module) -> tuple[torch.nn.Module, contextlib.AbstractContextManager]:
    """channels_last (CUDA, and CPU in one process: gloo's DDP cannot broadcast it); on CUDA also cuDNN autotuning,
    bf16 autocast with fp32 master weights and an
    optional torch.compile."""
    if _channels_last(ctx):
        objective.to(memory_format=torch.channels_last)
    if ctx.device.type != "cuda":
        return objective, contextlib.nullcontext()
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(ctx.cfg.amp)
    autocast = torch.autocast("cuda", dtype=dtype) if dtype is not None else contextlib.nullcontext()
    forward = torch.compile(objective) if ctx.cfg.compile else objective
    return forward, autocast


def _channels_last(ctx: Context) -> bool:
    return ctx.cfg.channels_last and (ctx.device.type == "cuda" or ctx.world == 1)


def _stop_everywhere(ctx: Context, stop: bool) -> bool:
    """All ranks stop at the same step when any one runs out of time."""
    if ctx.world == 1:
        return stop
    flag = torch.tensor([1.0 if stop else 0.0], device=ctx.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def train_stage(
    ctx: Context, stage: str, objective: torch.nn.Module, sources: dict[str, Dataset], section: StageConfig
) -> dict:
    """Adam + cosine decay over the stage's steps and/or time budget; resumes from ``<stage>/last.pt``.

    With a time budget (``minutes``, or a share of ``--time-budget``) the learning rate follows whichever of
    step and time progress is further along, and the stage ends at its budget with a checkpoint; without
    one it runs exactly ``steps`` (or ``epochs``). Returns the stage record (steps, seconds, step time, logs).
    """
    from tqdm import tqdm

    budget = stage_budget(ctx, stage, section)
    has_steps = section.has_length
    if budget is None and not has_steps:
        raise ValueError(f"stage {stage}: give steps, epochs or minutes (or run with --time-budget)")
    steps = section.step_count(len(next(iter(sources.values())))) if has_steps else 1 << 40
    lr, final_ratio = float(section.lr), float(section.final_lr_ratio)
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
    workers = ctx.cfg.workers
    loader = DataLoader(
        StepBatches(sources, section.batch, ctx.rank, ctx.world),
        sampler=range(start, steps),
        batch_size=None,
        num_workers=workers,
        pin_memory=ctx.device.type == "cuda",
        prefetch_factor=4 if workers else None,
        persistent_workers=False,
    )
    channels_last = _channels_last(ctx)
    every, log_every = ctx.cfg.checkpoint_every, ctx.cfg.log_every
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
            atomic_torch_save(
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
    logged = start

    def log_row(loss: torch.Tensor, logs: dict) -> None:
        """One metrics.csv (and TensorBoard) row for the step just done."""
        row = {
            "stage": stage,
            "step": done,
            "loss": float(loss.detach()),
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": round(elapsed(), 2),
            **logs,
        }
        append_csv(ctx.run_dir / "metrics.csv", row)
        if ctx.writer is not None:
            for key, value in row.items():
                if isinstance(value, float):
                    ctx.writer.add_scalar(f"{stage}/{key}", value, done)
        bar.set_postfix(loss=f"{float(loss.detach()):.4f}")

    for step, batch in zip(range(start, steps), loader):
        if _stop_everywhere(ctx, budget is not None and step > start and elapsed() >= budget):  # >= 1 step
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
            log_row(loss, logs)
            logged = done
        if done % every == 0:
            save()
    if ctx.is_main and done > logged:  # a stage cut by its time budget logs where it stopped
        log_row(loss, logs)
    save()
    bar.close()
    if ctx.world > 1:
        dist.barrier()
    seconds = elapsed()
    if first_step_at and done > first_step_at[0]:  # the first step (warm-up, compilation) is left out
        timed = (done - first_step_at[0], seconds - first_step_at[1])
    else:
        timed = (done - start, first_step_at[1] - elapsed_before) if first_step_at else (0, 0.0)
    return {
        "steps": done,
        "seconds": round(seconds, 1),
        "step_ms": round(1000 * timed[1] / timed[0], 1) if timed[0] else None,
        "budget_s": round(budget, 1) if budget is not None else None,
        "stopped_by": "time" if done < steps else "steps",
        "lr": lr,
        "batch": section.batch,
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
        "amp": ctx.cfg.amp if ctx.device.type == "cuda" else "fp32",
    }


def append_csv(path: Path, row: dict) -> None:
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
