"""Inference layer: numpy image in, numpy image out. Knows nothing about ROS."""

from .backends import (
    BACKENDS,
    Backend,
    BackendError,
    ModelFiles,
    OnnxRuntimeBackend,
    TensorRTBackend,
    TorchBackend,
    create_backend,
)
from .enhancer import Enhancer, EnhanceResult, Frame, ProcessingOptions
from .processing import AGCConfig

__all__ = [
    "AGCConfig",
    "BACKENDS",
    "Backend",
    "BackendError",
    "EnhanceResult",
    "Enhancer",
    "Frame",
    "ModelFiles",
    "OnnxRuntimeBackend",
    "ProcessingOptions",
    "TensorRTBackend",
    "TorchBackend",
    "create_backend",
]
