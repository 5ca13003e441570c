"""Network definitions: MIMO-UNet blocks, SPAN, the integrated SR + deblur model, weight files."""

from .checkpoints import (
    WeightFileError,
    load_mimo_unet_reference,
    load_model,
    load_model_or_config,
    load_span,
    load_span_reference,
    save_model,
    save_span,
)
from .srdb_net import CONFIGS, TASKS, ModelConfig, SRDeblurNet, build_model, count_parameters

__all__ = [
    "CONFIGS",
    "TASKS",
    "ModelConfig",
    "SRDeblurNet",
    "WeightFileError",
    "build_model",
    "count_parameters",
    "load_mimo_unet_reference",
    "load_model",
    "load_model_or_config",
    "load_span",
    "load_span_reference",
    "save_model",
    "save_span",
]
