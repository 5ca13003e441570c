"""The pipeline's stages (Fig. 5 of the paper), their data sources and validation.

  init          the teacher's starting point (srdb weights, reference MIMO-UNet / SPAN checkpoints, or random)
  phase1        deblurring with the shared encoder
  phase2        encoder and deblur branch frozen; fitting conv + SPAN trained for x4 SR
  dann          both tasks on EO + domain classifiers (gradient reversal) against unlabelled IR, lr 1e-5
  distill       teacher -> student (feature + pseudo + GT loss)
  student_dann  student fine-tune + DANN
  blur_head     the blur estimator on the student's frozen encoder (exact blur of every synthetic pair)
  export        deploy form -> safetensors -> ONNX per task -> TensorRT engine where TensorRT is present
  span_baseline a standalone SPAN on the same SR data (Fig. 9), only when asked for

Each stage reads the previous stage's weights from the run folder and writes ``<stage>/<role>.safetensors`` and
``<stage>/done.json``.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch.distributed as dist
from torch.utils.data import Dataset

from ..core.contract import SCALE
from ..core.files import file_digest
from ..data.blur import synthesizer_for
from ..data.datasets import (
    GoProDataset,
    MixtureDataset,
    SRDataset,
    SyntheticBlurDataset,
    UnlabeledDataset,
    list_images,
)
from ..models import (
    SRDeblurNet,
    build_model,
    load_mimo_unet_reference,
    load_model,
    load_span_reference,
    save_model,
    save_span,
)
from ..models.span import SPAN, bilinear_span_init, refresh_fused
from ..quality.scoring import deblur_pairs_from_sharp, score, sharp_pair, sr_pairs_from_hr
from ..quality.suite import estimator_errors, unchanged_summary
from .config import STAGES, StageConfig
from .loop import Context, append_csv, train_stage
from .objectives import (
    BlurHeadObjective,
    DANNObjective,
    DistillObjective,
    Phase1Objective,
    Phase2Objective,
    StandaloneSRObjective,
)

LOG = logging.getLogger(__name__)
VALIDATION_BLUR_SEED = 4321


# -- data ---------------------------------------------------------------------------------------------------------
def blur_synthesizer(ctx: Context, domain: str, seed: int):
    """The configured EO camera blur (``data.blur``) or IR thermal smear (``data.ir_blur``)."""
    data = ctx.cfg.data
    return synthesizer_for(domain, data.ir_blur if domain == "ir" else data.blur, seed)


def with_ir_share(eo: Dataset, share: float, make_ir: Callable[[], Dataset], seed: int) -> Dataset:
    """``eo`` alone, or mixed with IR pairs (built only then) that make up ``share`` of the draws."""
    if share <= 0:
        return eo
    return MixtureDataset([eo, make_ir()], [1.0 - share, share], seed)


def deblur_source(ctx: Context, crop: int, seed: int) -> Dataset:
    """EO blur pairs (GOPRO or synthetic), mixed with thermal-blur IR pairs when ``data.ir_deblur_share`` > 0."""
    data = ctx.cfg.data
    if data.gopro_root:
        eo = GoProDataset(data.gopro_root, data.gopro_split, crop, seed)
    else:
        eo = SyntheticBlurDataset(data.eo_train, crop, seed, blur_synthesizer(ctx, "eo", seed))
    ir_seed = seed + 11
    return with_ir_share(
        eo,
        data.ir_deblur_share,
        lambda: SyntheticBlurDataset(data.ir_train, crop, ir_seed, blur_synthesizer(ctx, "ir", ir_seed)),
        seed,
    )


def sr_source(ctx: Context, lr_crop: int, seed: int) -> Dataset:
    """EO x4 pairs (HR frames, LR by bicubic), mixed with IR x4 pairs when ``data.ir_sr_share`` > 0.

    IR frames blurred before downscaling (``data.sr_blur_prob``) get the thermal smear, EO frames the camera blur.
    """
    data = ctx.cfg.data
    eo = SRDataset(
        data.sr_train or data.eo_train,
        data.sr_lr_train or None,
        SCALE,
        lr_crop,
        seed,
        data.sr_blur_prob,
        blur_synthesizer(ctx, "eo", seed + 7),
    )
    ir_seed = seed + 13
    return with_ir_share(
        eo,
        data.ir_sr_share,
        lambda: SRDataset(
            data.ir_train, None, SCALE, lr_crop, ir_seed, data.sr_blur_prob, blur_synthesizer(ctx, "ir", ir_seed + 7)
        ),
        seed,
    )


def blur_measure_source(ctx: Context, crop: int, seed: int) -> Dataset:
    """Blurred EO (and thermal, at ``data.ir_deblur_share``) crops with their kernel's blur, for the estimator."""
    data = ctx.cfg.data
    eo = SyntheticBlurDataset(data.eo_train, crop, seed, blur_synthesizer(ctx, "eo", seed), measure=True)
    ir_seed = seed + 11
    return with_ir_share(
        eo,
        data.ir_deblur_share,
        lambda: SyntheticBlurDataset(data.ir_train, crop, ir_seed, blur_synthesizer(ctx, "ir", ir_seed), measure=True),
        seed,
    )


def target_source(ctx: Context, crop: int, seed: int) -> Dataset:
    return UnlabeledDataset(ctx.cfg.data.ir_train, crop, seed)


# which data each stage reads (beyond what its data shares add)
STAGE_DATA = {
    "phase1": ("deblur",),
    "phase2": ("sr",),
    "dann": ("deblur", "sr", "target"),
    "distill": ("deblur", "sr"),
    "student_dann": ("deblur", "sr", "target"),
    "blur_head": ("blur",),
    "span_baseline": ("sr",),
}


def preflight(cfg, stages: list[str]) -> None:
    """Check every data path and weight file the given stages will read, before anything trains or a run folder
    is made, so a missing folder fails in seconds rather than hours into a run."""
    data = cfg.data
    needs = {need for stage in stages for need in STAGE_DATA.get(stage, ())}
    keys = set()
    if "deblur" in needs:
        keys |= {"gopro_root"} if data.gopro_root else {"eo_train"}
        keys |= {"ir_train"} if data.ir_deblur_share > 0 else set()
    if "sr" in needs:
        keys |= {"sr_train"} if data.sr_train else {"eo_train"}
        keys |= {"sr_lr_train"} if data.sr_lr_train else set()
        keys |= {"ir_train"} if data.ir_sr_share > 0 else set()
    if "target" in needs:
        keys.add("ir_train")
    if "blur" in needs:
        keys |= {"eo_train"} | ({"ir_train"} if data.ir_deblur_share > 0 else set())
    if cfg.validation.enabled and any(s not in ("export", "span_baseline") for s in stages):
        keys |= {key for key in ("eo_val", "ir_val") if getattr(data, key)}
    for key in sorted(keys):
        value = getattr(data, key)
        if not value:
            raise ValueError(f"stages {', '.join(stages)} need data.{key}, which the config leaves empty")
        try:
            if key == "gopro_root":
                GoProDataset(value, data.gopro_split)
            elif key == "sr_lr_train":
                if not Path(value).is_dir():
                    raise FileNotFoundError(f"{value}: folder not found")
            elif not list_images(value):
                raise ValueError(f"no images in {value}")
        except (FileNotFoundError, ValueError) as exc:
            raise FileNotFoundError(f"data.{key}: {exc}") from None
    files = {"init": ("mimo_unet", "span", "teacher_init"), "distill": ("teacher_init", "student_init")}
    for stage, names in files.items():
        if stage in stages or (stage == "distill" and {"distill", "student_dann"} & set(stages)):
            for name in names:
                path = getattr(cfg.stages[stage], name)
                if path and not Path(path).is_file():
                    raise FileNotFoundError(f"stages.{stage}.{name}: {path} not found")


# -- stages ------------------------------------------------------------------------------------------------------
def _previous(ctx: Context, stage: str, role: str) -> SRDeblurNet:
    """The newest finished model of ``role`` (teacher/student) from stages before ``stage``."""
    order = STAGES[: STAGES.index(stage)]
    for prev in reversed(order):
        path = ctx.stage_dir(prev) / f"{role}.safetensors"
        if (ctx.stage_dir(prev) / "done.json").is_file() and path.is_file():
            return load_model(path)
    init = getattr(ctx.cfg.stages["distill"], f"{role}_init")
    if init:
        LOG.info("%s: %s from %s", stage, role, init)
        return load_model(init)
    if role == "teacher":
        raise FileNotFoundError(
            f"stage {stage} needs a teacher: run the teacher stages first, or set stages.distill.teacher_init"
        )
    return build_model(ctx.cfg.student)


def stage_init(ctx: Context, section) -> dict:
    """The teacher's starting point: a srdb ``.safetensors`` (``teacher_init``), reference checkpoints, or random."""
    if section.teacher_init:
        model = load_model(section.teacher_init)
        origin = {"teacher_init": section.teacher_init}
    else:
        model = build_model(ctx.cfg.teacher)
        if section.mimo_unet:
            load_mimo_unet_reference(model, section.mimo_unet)
        if section.span:
            load_span_reference(model, section.span)
        origin = {"mimo_unet": section.mimo_unet or "random init", "span": section.span or "random init"}
    _finish(ctx, "init", model, "teacher", {"from": origin})
    return {"from": origin}


def stage_phase1(ctx: Context, section: StageConfig) -> dict:
    model = _previous(ctx, "phase1", "teacher")
    info = train_stage(
        ctx,
        "phase1",
        Phase1Objective(model),
        {"deblur": deblur_source(ctx, section.crop, ctx.cfg.seed + 1)},
        section,
    )
    _finish(ctx, "phase1", model, "teacher", info)
    return info


def stage_phase2(ctx: Context, section) -> dict:
    model = _previous(ctx, "phase2", "teacher")
    objective = Phase2Objective(model)
    source = sr_source(ctx, section.sr_crop, ctx.cfg.seed + 2)
    if not (ctx.stage_dir("phase2") / "last.pt").is_file():
        _init_sr_branch(model, section, "phase2")
    info = train_stage(ctx, "phase2", objective, {"sr": source}, section)
    model.requires_grad_(True)
    refresh_fused(model.span)
    _finish(ctx, "phase2", model, "teacher", info)
    return info


def _init_sr_branch(model: SRDeblurNet, section, stage: str) -> None:
    """Optional starting point for a fresh SPAN (config ``span_init``)."""
    if section.span_init == "bilinear":
        bilinear_span_init(model.span)
        LOG.info("%s: SPAN initialised as a bilinear x%d upsampler of its input", stage, model.upscale)


def _dann_sources(ctx: Context, section: StageConfig, seed: int) -> dict[str, Dataset]:
    crop = section.crop
    return {
        "deblur": deblur_source(ctx, crop, seed),
        "sr": sr_source(ctx, section.sr_crop, seed + 1),
        "target": target_source(ctx, crop, seed + 2),
    }


def _run_dann(ctx: Context, stage: str, role: str, section, seed: int) -> dict:
    model = _previous(ctx, stage, role)
    objective = DANNObjective(model, section.grl_coeff, section.domain_weight)
    info = train_stage(ctx, stage, objective, _dann_sources(ctx, section, seed), section)
    refresh_fused(model.span)
    _finish(ctx, stage, model, role, info)
    return info


def stage_dann(ctx: Context, section) -> dict:
    return _run_dann(ctx, "dann", "teacher", section, ctx.cfg.seed + 3)


def stage_distill(ctx: Context, section) -> dict:
    teacher = _previous(ctx, "distill", "teacher")
    student = _previous(ctx, "distill", "student")
    sources = {
        "deblur": deblur_source(ctx, section.crop, ctx.cfg.seed + 4),
        "sr": sr_source(ctx, section.sr_crop, ctx.cfg.seed + 5),
    }
    if not (ctx.stage_dir("distill") / "last.pt").is_file() and not section.student_init:
        if section.init_span_from_teacher:  # same SPAN in both: start from the teacher's
            student.span.load_state_dict(teacher.span.state_dict())
        _init_sr_branch(student, section, "distill")
    info = train_stage(ctx, "distill", DistillObjective(student, teacher), sources, section)
    refresh_fused(student.span)
    _finish(ctx, "distill", student, "student", info)
    return info


def stage_student_dann(ctx: Context, section) -> dict:
    return _run_dann(ctx, "student_dann", "student", section, ctx.cfg.seed + 6)


def stage_blur_head(ctx: Context, section) -> dict:
    """The blur estimator (models.blur_head) on the student's frozen encoder; the rest of the student is unchanged."""
    student = _previous(ctx, "blur_head", "student")
    objective = BlurHeadObjective(student)
    sources = {"blur": blur_measure_source(ctx, section.crop, ctx.cfg.seed + 8)}
    info = train_stage(ctx, "blur_head", objective, sources, section)
    student.set_fade(*section.fade_px)
    student.requires_grad_(True)
    _finish(ctx, "blur_head", student, "student", info)
    return info


def stage_export(ctx: Context, section) -> dict:
    from ..export.onnx_export import export_onnx

    student = _previous(ctx, "export", "student")
    out = ctx.stage_dir("export")
    out.mkdir(parents=True, exist_ok=True)
    weights = save_model(student, out / "srdb_student.safetensors")
    info: dict = {"weights": str(weights), "onnx": {}, "engines": {}}
    for task in section.tasks:
        result = export_onnx(
            copy.deepcopy(student), task, out / f"srdb_student_{task}.onnx", weights_sha256=file_digest(weights)
        )
        info["onnx"][task] = {"path": str(result.path), "max_abs_diff": result.max_abs_diff}
        if section.tensorrt:
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


def stage_span_baseline(ctx: Context, section) -> dict:
    """A standalone SPAN trained on the same SR data, length and initialisation as phase 2 (for Fig. 9): the
    phase2 section, with whatever the span_baseline section sets on top."""
    phase2 = ctx.cfg.stages["phase2"]
    given = {k: v for k, v in vars(section).items() if v != getattr(type(section)(), k)}
    merged = type(phase2)(**{**vars(phase2), **given})
    span = SPAN(feature_channels=build_model(ctx.cfg.teacher).config.span_channels)
    if merged.span_init == "bilinear":
        bilinear_span_init(span)
    source = sr_source(ctx, merged.sr_crop, ctx.cfg.seed + 2)
    info = train_stage(ctx, "span_baseline", StandaloneSRObjective(span), {"sr": source}, merged)
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
    "blur_head": stage_blur_head,
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
    """PSNR/SSIM on the validation frames: deblur (synthetic blur) and x4 SR, EO and IR; the deblurred sharp frames
    against themselves (``<domain>_sharp_psnr``, pooled; empty when every frame comes back unchanged); with a blur
    estimator, its median length and axis errors on the synthetic pairs and its median reading of the sharp
    frames."""
    data = ctx.cfg.data
    n, crop = ctx.cfg.validation.max_images, ctx.cfg.validation.crop
    row: dict = {"stage": stage, "model": model.config.name}
    model = model.to(ctx.device).eval()
    for domain, key in (("eo", "eo_val"), ("ir", "ir_val")):
        if not getattr(data, key):
            continue
        synth = blur_synthesizer(ctx, domain, VALIDATION_BLUR_SEED)
        pairs = deblur_pairs_from_sharp(getattr(data, key), max_images=n, crop=crop, synthesizer=synth)
        deblur = score(model, pairs, "deblur")
        sr = score(model, sr_pairs_from_hr(getattr(data, key), SCALE, n, crop), "sr")
        for name, r in ((f"{domain}_deblur", deblur), (f"{domain}_sr", sr)):
            row |= {
                f"{name}_psnr": round(r["model_psnr"], 3),
                f"{name}_ssim": round(r["model_ssim"], 4),
                f"{name}_baseline_psnr": round(r["baseline_psnr"], 3),
            }
        sharp = score(model, [sharp_pair(p.name, p.target) for p in pairs], "deblur")["images"]
        pooled = unchanged_summary(sharp)["model_psnr"]
        row[f"{domain}_sharp_psnr"] = None if pooled is None else round(pooled, 3)
        if model.blur_head is not None:
            errors = estimator_errors(pairs, deblur["images"])
            axis = errors["blur_axis_error_deg"]
            row |= {
                f"{domain}_blur_length_err_px": round(errors["blur_length_error_px"], 2),
                f"{domain}_blur_axis_err_deg": None if axis is None else round(axis, 1),
                f"{domain}_sharp_blur_px": round(float(np.median([r["blur_estimate"][2] for r in sharp])), 2),
            }
    append_csv(ctx.run_dir / "validation.csv", row)
    return row


# -- entry point -------------------------------------------------------------------------------------------------
