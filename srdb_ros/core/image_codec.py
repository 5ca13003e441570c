"""sensor_msgs/Image fields <-> NumPy arrays, without ROS: the one encoder and decoder that the node (rclpy
messages) and the bag tooling (rosbags messages) share. Honours ``step`` (padded rows) and ``is_bigendian``."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EncodingSpec:
    dtype: type
    channels: int
    color_order: str  # "rgb", "bgr" or "mono"


ENCODINGS: dict[str, EncodingSpec] = {
    "rgb8": EncodingSpec(np.uint8, 3, "rgb"),
    "bgr8": EncodingSpec(np.uint8, 3, "bgr"),
    "mono8": EncodingSpec(np.uint8, 1, "mono"),
    "mono16": EncodingSpec(np.uint16, 1, "mono"),
    "16UC1": EncodingSpec(np.uint16, 1, "mono"),
}


class ImageConversionError(ValueError):
    """The message cannot be read as an image (unsupported encoding, bad sizes, short data)."""


@dataclass(frozen=True)
class ImageFields:
    """The payload fields of a sensor_msgs/Image (the header is the caller's)."""

    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: bytes


def validate_image(msg, max_pixels: int = 0, min_side: int = 1) -> EncodingSpec:
    """The message's encoding spec, or :class:`ImageConversionError` saying what is wrong with it."""
    spec = ENCODINGS.get(msg.encoding)
    if spec is None:
        shown = msg.encoding if len(msg.encoding) <= 32 else msg.encoding[:29] + "..."
        raise ImageConversionError(f"unsupported encoding {shown!r}; supported: {', '.join(ENCODINGS)}")
    h, w = int(msg.height), int(msg.width)
    if h < min_side or w < min_side:
        raise ImageConversionError(f"image {w}x{h} is smaller than the minimum side {min_side}")
    if max_pixels and h * w > max_pixels:
        raise ImageConversionError(f"image {w}x{h} exceeds max_pixels={max_pixels}")
    row_bytes = w * spec.channels * np.dtype(spec.dtype).itemsize
    if msg.step < row_bytes:
        raise ImageConversionError(f"step {msg.step} is less than width*channels*bytes = {row_bytes}")
    if len(msg.data) != msg.step * h:
        raise ImageConversionError(f"data has {len(msg.data)} bytes, expected step*height = {msg.step * h}")
    return spec


def decode_image(msg, max_pixels: int = 0, min_side: int = 1) -> tuple[np.ndarray, str]:
    """(HxW or HxWx3 array in native byte order, colour order) of any object with sensor_msgs/Image fields."""
    spec = validate_image(msg, max_pixels, min_side)
    h, w = int(msg.height), int(msg.width)
    row_bytes = w * spec.channels * np.dtype(spec.dtype).itemsize
    raw = np.frombuffer(msg.data, dtype=np.uint8).reshape(h, msg.step)[:, :row_bytes]
    dtype = np.dtype(spec.dtype).newbyteorder(">" if msg.is_bigendian else "<")
    arr = np.ascontiguousarray(raw).view(dtype).reshape((h, w) if spec.channels == 1 else (h, w, spec.channels))
    if arr.dtype.byteorder not in ("=", "|", _native()):
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr, spec.color_order


def encode_image(arr: np.ndarray, encoding: str) -> ImageFields:
    """Image fields (native byte order, unpadded rows) for an array of the encoding's type and channels."""
    spec = ENCODINGS.get(encoding)
    if spec is None:
        raise ImageConversionError(f"unsupported encoding {encoding!r}; supported: {', '.join(ENCODINGS)}")
    arr = np.ascontiguousarray(arr, dtype=spec.dtype)
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    if channels != spec.channels:
        raise ImageConversionError(f"{encoding} needs {spec.channels} channel(s), array has {channels}")
    return ImageFields(
        height=int(arr.shape[0]),
        width=int(arr.shape[1]),
        encoding=encoding,
        is_bigendian=int(sys.byteorder == "big"),
        step=int(arr.shape[1] * channels * arr.itemsize),
        data=arr.tobytes(),
    )


def _native() -> str:
    return "<" if sys.byteorder == "little" else ">"
