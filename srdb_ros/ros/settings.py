"""The enhance node's settings as frozen, typed snapshots of its parameter table.

The node builds a :class:`NodeSettings` (with one :class:`CameraSettings` per camera) from its parameters at
start and after every accepted change, and swaps it whole; the worker reads one snapshot per batch of frames,
so a change of several parameters (``tile_size`` and ``tile_overlap``) is never seen half made. The rules are
checked before, by :func:`srdb_ros.ros.params.validate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..inference import AGCConfig, ModelFiles, ProcessingOptions
from .params import CAMERA_LEAVES, ParamSpec

AGC_PARAMS = ("agc.mode", "agc.low_percentile", "agc.high_percentile", "agc.fixed_min", "agc.fixed_max")


@dataclass(frozen=True)
class CameraSettings:
    name: str
    domain: str
    enabled: bool
    task: str
    transport: str
    compressed_outputs: str
    min_blur_px: float


@dataclass(frozen=True)
class DiagnosticsSettings:
    min_rate: float
    stale_after: float
    max_stamp_age: float
    period: float
    error_hold: float
    window: int


@dataclass(frozen=True)
class CompressionSettings:
    jpeg_quality: int
    png_level: int


@dataclass(frozen=True)
class NodeSettings:
    backend: str
    weights_path: str
    onnx_path: str
    engine_path: str
    force_engine_update: bool
    cache_dir: str
    compiled_path: str
    device: str
    precision: str
    managed: bool
    cameras: tuple[CameraSettings, ...]
    agc: AGCConfig
    compressed: CompressionSettings
    input_qos: str
    qos_depth: int
    camera_info_tolerance: float
    batch_cameras: bool
    max_pixels: int
    memory_budget_mb: float
    min_side: int
    tile_size: int
    tile_overlap: int
    diagnostics: DiagnosticsSettings
    hardware_id: str
    log_every_n: int

    def camera(self, name: str) -> CameraSettings:
        return next(c for c in self.cameras if c.name == name)

    @property
    def enabled_cameras(self) -> tuple[CameraSettings, ...]:
        return tuple(c for c in self.cameras if c.enabled)

    @property
    def processing(self) -> ProcessingOptions:
        return ProcessingOptions(self.agc, self.tile_size, self.tile_overlap)

    def model_files(self, weights: str) -> ModelFiles:
        """Where the model comes from (``weights``: ``weights_path`` or the bundled model)."""
        return ModelFiles(weights, self.onnx_path, self.engine_path, self.compiled_path, self.cache_dir)


def settings_from(values: Mapping[str, Any], specs: Mapping[str, ParamSpec]) -> NodeSettings:
    """Settings from a value for every parameter of the table ``specs`` (floats given as ints become floats)."""
    typed = {n: float(v) if isinstance(specs[n].default, float) else v for n, v in values.items() if n in specs}
    cameras = tuple(
        CameraSettings(name, **{leaf: typed[f"{name}.{leaf}"] for leaf in CAMERA_LEAVES}) for name in typed["cameras"]
    )
    nested = {
        "cameras": cameras,
        "agc": AGCConfig(*(typed[k] for k in AGC_PARAMS)),
        "compressed": _group(CompressionSettings, "compressed", typed),
        "diagnostics": _group(DiagnosticsSettings, "diagnostics", typed),
    }
    flat = {f.name: typed[f.name] for f in fields(NodeSettings) if f.name not in nested}
    return NodeSettings(**flat, **nested)


def _group(kind: type, prefix: str, values: Mapping[str, Any]):
    """A settings group from the parameters ``<prefix>.<field>``."""
    return kind(**{f.name: values[f"{prefix}.{f.name}"] for f in fields(kind)})
