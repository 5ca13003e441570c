"""sensor_msgs/Image <-> numpy, and camera_info scaling.

cv_bridge is used where it imports (a ROS install); elsewhere an equivalent conversion is used that
honours ``step`` (padded rows) and ``is_bigendian``. Both give the same arrays; tests check the fallback.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

try:  # cv_bridge ships with ROS installs, not with the PyPI wheels
    from cv_bridge import CvBridge as _CvBridge

    _BRIDGE = _CvBridge()
except Exception:  # noqa: BLE001 - a broken cv_bridge (e.g. NumPy 2 ABI) must not stop the node
    _BRIDGE = None


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


def cv_bridge_available() -> bool:
    return _BRIDGE is not None


def image_msg_to_array(msg, max_pixels: int = 0, min_side: int = 1) -> tuple[np.ndarray, str]:
    """Return (HxW or HxWx3 array in native byte order, colour order) for a sensor_msgs/Image (cv_bridge if present)."""
    spec = validate_image(msg, max_pixels, min_side)
    if _BRIDGE is not None:
        return np.ascontiguousarray(_BRIDGE.imgmsg_to_cv2(msg, desired_encoding="passthrough")), spec.color_order
    return _decode(msg, spec), spec.color_order


def decode_image(msg, max_pixels: int = 0, min_side: int = 1) -> tuple[np.ndarray, str]:
    """Validate and decode any object with sensor_msgs/Image fields (rclpy or rosbags messages) with NumPy."""
    spec = validate_image(msg, max_pixels, min_side)
    return _decode(msg, spec), spec.color_order


def validate_image(msg, max_pixels: int = 0, min_side: int = 1) -> EncodingSpec:
    """The message's encoding spec, or :class:`ImageConversionError` saying what is wrong with it."""
    spec = ENCODINGS.get(msg.encoding)
    if spec is None:
        raise ImageConversionError(f"unsupported encoding {msg.encoding!r}; supported: {', '.join(ENCODINGS)}")
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


def _decode(msg, spec: EncodingSpec) -> np.ndarray:
    h, w = int(msg.height), int(msg.width)
    row_bytes = w * spec.channels * np.dtype(spec.dtype).itemsize
    raw = np.frombuffer(msg.data, dtype=np.uint8).reshape(h, msg.step)[:, :row_bytes]
    dtype = np.dtype(spec.dtype).newbyteorder(">" if msg.is_bigendian else "<")
    arr = np.ascontiguousarray(raw).view(dtype).reshape((h, w) if spec.channels == 1 else (h, w, spec.channels))
    if arr.dtype.byteorder not in ("=", "|", _native()):
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _native() -> str:
    return "<" if sys.byteorder == "little" else ">"


def array_to_image_msg(arr: np.ndarray, encoding: str, header=None):
    """Build a sensor_msgs/Image (native byte order, unpadded rows) from an array of the encoding's type."""
    from sensor_msgs.msg import Image

    spec = ENCODINGS.get(encoding)
    if spec is None:
        raise ImageConversionError(f"unsupported encoding {encoding!r}")
    arr = np.ascontiguousarray(arr, dtype=spec.dtype)
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    if channels != spec.channels:
        raise ImageConversionError(f"{encoding} needs {spec.channels} channel(s), array has {channels}")
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(arr.shape[0]), int(arr.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = int(sys.byteorder == "big")
    msg.step = int(arr.shape[1] * channels * arr.itemsize)
    msg.data = arr.tobytes()
    return msg


def scale_camera_info(info, scale: int):
    """CameraInfo for an image upscaled by ``scale``.

    Convention (pixel centres at integer coordinates): a point at u in the input is at
    ``scale * u + (scale - 1) / 2`` in the output, so fx, fy scale by ``scale`` and
    ``cx' = scale * cx + (scale - 1) / 2`` (and likewise cy, in K and P). This is exact for the
    half-pixel-aligned upsampling the network and bicubic resizing do; image_proc's resize uses
    ``cx' = scale * cx`` and is off by 1.5 px at x4. Distortion coefficients are unchanged.
    """
    from sensor_msgs.msg import CameraInfo

    out = CameraInfo()
    out.header = info.header
    out.height, out.width = info.height * scale, info.width * scale
    out.distortion_model = info.distortion_model
    out.d = list(info.d)
    out.r = list(info.r)
    shift = (scale - 1) / 2.0
    k = list(info.k)
    k[0], k[2], k[4], k[5] = k[0] * scale, k[2] * scale + shift, k[4] * scale, k[5] * scale + shift
    out.k = k
    p = list(info.p)
    p[0], p[2], p[3] = p[0] * scale, p[2] * scale + shift, p[3] * scale
    p[5], p[6], p[7] = p[5] * scale, p[6] * scale + shift, p[7] * scale
    out.p = p
    out.binning_x, out.binning_y = info.binning_x, info.binning_y
    out.roi.x_offset = info.roi.x_offset * scale
    out.roi.y_offset = info.roi.y_offset * scale
    out.roi.width = info.roi.width * scale
    out.roi.height = info.roi.height * scale
    out.roi.do_rectify = info.roi.do_rectify
    return out
