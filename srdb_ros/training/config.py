"""The training configuration as typed dataclasses: every section's ``from_dict`` rejects unknown keys (a typo is
an error, never a silent default), and the defaults live here once.

A config file (``config/train_*.yaml``) has top-level run settings, ``data``, ``validation`` and ``stages``;
each stage section is the dataclass of that stage. ``base: other.yaml`` (relative to the file) starts from
another config: its mappings are merged key by key, and whatever the file sets replaces the base's value.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

STAGES = ("init", "phase1", "phase2", "dann", "distill", "student_dann", "blur_head", "export", "span_baseline")
DEFAULT_OFF = ("span_baseline",)  # run only when asked for (--stages span_baseline)
TEACHER_STAGES = ("init", "phase1", "phase2", "dann")
TRAINING_STAGES = ("phase1", "phase2", "dann", "distill", "student_dann", "blur_head", "span_baseline")


def _from_dict(cls, data: dict | None, where: str):
    """``cls(**data)`` with unknown keys reported by name (and the known ones listed)."""
    data = dict(data or {})
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    return cls(**data)


@dataclass
class StageConfig:
    """A training stage: its length (``steps``, ``epochs``, ``minutes`` and/or a ``share`` of ``--time-budget``),
    batch, crops and Adam learning rate (cosine decay to ``lr * final_lr_ratio``)."""

    enabled: bool = True
    steps: int | None = None
    epochs: float | None = None
    minutes: float | None = None
    share: float = 1.0
    batch: int = 1
    crop: int = 256
    lr_crop: int | None = None  # LR patch of x4 SR pairs (default crop // 4)
    lr: float = 1e-4
    final_lr_ratio: float = 0.01

    def __post_init__(self) -> None:
        if self.share < 0 or self.batch < 1 or self.crop < 8 or self.lr <= 0:
            raise ValueError("stage: share must be >= 0, batch >= 1, crop >= 8 and lr > 0")

    @property
    def sr_crop(self) -> int:
        return self.lr_crop or self.crop // 4

    @property
    def has_length(self) -> bool:
        return self.steps is not None or self.epochs is not None

    def step_count(self, dataset_len: int) -> int:
        """``steps`` directly, or ``epochs`` x (dataset size / batch)."""
        if self.steps is not None:
            return int(self.steps)
        return int((self.epochs or 0) * max(1, dataset_len // self.batch))


@dataclass
class InitConfig:
    """Where the teacher starts: a srdb ``.safetensors`` (``teacher_init``), reference MIMO-UNet / SPAN
    checkpoints, or random weights."""

    enabled: bool = True
    mimo_unet: str = ""
    span: str = ""
    teacher_init: str = ""


@dataclass
class Phase2Config(StageConfig):
    span_init: str = ""  # "bilinear": SPAN starts as a bilinear x4 upsampler of its input

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.span_init not in ("", "bilinear"):
            raise ValueError(f"span_init must be '' or 'bilinear', not {self.span_init!r}")


@dataclass
class DANNConfig(StageConfig):
    lr: float = 1e-5
    grl_coeff: float = 1.0
    domain_weight: float = 1.0


@dataclass
class DistillConfig(Phase2Config):
    teacher_init: str = ""  # a teacher file, when no teacher stage ran in this run folder
    student_init: str = ""  # where the student starts (default: random)
    init_span_from_teacher: bool = False


@dataclass
class BlurHeadConfig(StageConfig):
    """The blur estimator on the student's frozen encoder: a short stage (a small share of the time budget).
    ``fade_px``: estimated blur lengths over which the exported model's deblur correction fades in (none below
    the first, all from the second on; the training data's sharp pairs are 0-3 px); ``[0, 0]``: no fade."""

    share: float = 0.05
    batch: int = 8
    crop: int = 128
    lr: float = 1e-3
    fade_px: list[float] = field(default_factory=lambda: [1.0, 4.0])

    def __post_init__(self) -> None:
        super().__post_init__()
        fade = self.fade_px
        if not (len(fade) == 2 and (list(fade) == [0, 0] or 0 <= fade[0] < fade[1])):
            raise ValueError(f"blur_head: fade_px must be [from, to] with 0 <= from < to, or [0, 0]; got {fade}")


@dataclass
class ExportConfig:
    enabled: bool = True
    tasks: list[str] = field(default_factory=lambda: ["deblur", "sr", "both"])
    tensorrt: bool = True


STAGE_CLASSES: dict[str, type] = {
    "init": InitConfig,
    "phase1": StageConfig,
    "phase2": Phase2Config,
    "dann": DANNConfig,
    "distill": DistillConfig,
    "student_dann": DANNConfig,
    "blur_head": BlurHeadConfig,
    "export": ExportConfig,
    "span_baseline": Phase2Config,
}


@dataclass
class DataConfig:
    """Training and validation data. Paths are folders, image files or ``.txt`` splits (relative to ``root``)."""

    root: str = ""
    eo_train: list[str] = field(default_factory=list)
    ir_train: list[str] = field(default_factory=list)
    sr_train: list[str] = field(default_factory=list)
    sr_lr_train: str = ""
    eo_val: Any = ""
    ir_val: Any = ""
    gopro_root: str = ""
    gopro_split: str = "train"
    sr_blur_prob: float = 0.0
    ir_deblur_share: float = 0.0  # fraction of deblur pairs that are IR frames with thermal smear
    ir_sr_share: float = 0.0  # fraction of x4 SR pairs that are IR frames (from ir_train)
    blur: dict = field(default_factory=dict)  # MotionBlurSynthesizer fields
    ir_blur: dict = field(default_factory=dict)  # ThermalBlurSynthesizer fields

    PATH_KEYS = ("eo_train", "ir_train", "sr_train", "sr_lr_train", "eo_val", "ir_val", "gopro_root")

    def __post_init__(self) -> None:
        for key in ("eo_train", "ir_train", "sr_train"):
            value = getattr(self, key)
            setattr(self, key, [value] if isinstance(value, str) and value else list(value or []))
        shares = {k: getattr(self, k) for k in ("sr_blur_prob", "ir_deblur_share", "ir_sr_share")}
        outside = [k for k, v in shares.items() if not 0 <= v <= 1]
        if outside:
            raise ValueError(f"data: {', '.join(outside)} must be in [0, 1]")
        if (self.ir_deblur_share > 0 or self.ir_sr_share > 0) and not self.ir_train:
            raise ValueError("data: ir_deblur_share and ir_sr_share need IR frames in data.ir_train")
        from ..data.blur import synthesizer_for

        synthesizer_for("eo", self.blur, 0)  # typos in the blur sections fail here, at load time
        synthesizer_for("ir", self.ir_blur, 0)


@dataclass
class ValidationConfig:
    enabled: bool = True
    max_images: int = 8
    crop: int = 256


@dataclass
class TrainConfig:
    name: str = "run"
    seed: int = 0
    teacher: str = "teacher"
    student: str = "student"
    workers: int = 0
    checkpoint_every: int = 100
    log_every: int = 10
    time_reserve: float = 0.15  # fraction of --time-budget kept for validation and export
    amp: str = "bf16"  # CUDA autocast: bf16, fp16 or none (fp32 master weights either way)
    channels_last: bool = True
    compile: bool = False
    data: DataConfig = field(default_factory=DataConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    stages: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.amp not in ("bf16", "fp16", "none"):
            raise ValueError(f"amp must be bf16, fp16 or none, not {self.amp!r}")
        if not 0 <= self.time_reserve < 1:
            raise ValueError("time_reserve must be in [0, 1)")

    @classmethod
    def from_dict(cls, raw: dict) -> TrainConfig:
        raw = dict(raw or {})
        data = _from_dict(DataConfig, raw.pop("data", None), "data")
        validation = _from_dict(ValidationConfig, raw.pop("validation", None), "validation")
        sections = raw.pop("stages", None) or {}
        unknown = sorted(set(sections) - set(STAGES))
        if unknown:
            raise ValueError(f"stages: unknown stage(s) {unknown}; stages are {list(STAGES)}")
        stages = {s: _from_dict(STAGE_CLASSES[s], sections.get(s), f"stages.{s}") for s in STAGES}
        config = _from_dict(cls, raw, "config")
        config.data, config.validation, config.stages = data, validation, stages
        return config

    def stage(self, name: str):
        return self.stages[name]

    def enabled_stages(self) -> list[str]:
        return [s for s in STAGES if self.stages[s].enabled and s not in DEFAULT_OFF]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def resolve_path(value: str, base: Path) -> str:
    """Relative data paths are looked up from the working directory, then from the package share folder."""
    if not value:
        return value
    path = Path(value)
    if path.is_absolute() or path.exists():
        return str(path)
    return str(base / path)


def merge_dicts(base: dict, override: dict) -> dict:
    """``base`` updated by ``override``, recursing into mappings both have; other values are replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_dicts(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_config_dict(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """A config file as a dict, with its ``base:`` chain merged in (base first, the file's own keys last)."""
    path = Path(path).resolve()
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise ValueError(f"config base chain loops: {chain}")
    if not path.is_file():
        raise FileNotFoundError(f"training config not found: {path}")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a training config is a mapping, got {type(raw).__name__}")
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str) or not base:
        raise ValueError(f"{path}: base must be the path of another config, got {base!r}")
    return merge_dicts(read_config_dict(path.parent / base, (*_seen, path)), raw)


def load_config(path: str | Path, data_root: str | Path | None = None) -> TrainConfig:
    """A training config with its data resolved: paths from the working directory or the share folder, and
    ``.txt`` splits read into image lists relative to ``data.root`` (or ``data_root``, which overrides it)."""
    from ..data.datasets import read_split
    from ..resources import share_dir

    cfg = TrainConfig.from_dict(read_config_dict(path))
    base = share_dir()
    data = cfg.data
    if data_root and not Path(data_root).is_dir():
        raise FileNotFoundError(f"--data-root {data_root}: no such folder")
    root = str(data_root or data.root or "")
    if root:
        data.root = root = resolve_path(root, base)

    def expand(value: str) -> list[str]:
        resolved = resolve_path(value, base)
        if resolved.endswith(".txt") and Path(resolved).is_file():
            return [str(p) for p in read_split(resolved, root or None)]
        return [resolved]

    for key in DataConfig.PATH_KEYS:
        value = getattr(data, key)
        if isinstance(value, list):
            setattr(data, key, [p for v in value for p in expand(v)])
        elif isinstance(value, str) and value:
            paths = expand(value)
            setattr(data, key, paths if value.endswith(".txt") else paths[0])
    init_files = {"init": ("mimo_unet", "span", "teacher_init"), "distill": ("teacher_init", "student_init")}
    for stage, keys in init_files.items():
        section = cfg.stages[stage]
        for key in keys:
            if getattr(section, key):
                setattr(section, key, resolve_path(getattr(section, key), base))
    return cfg
