"""rclpy sensor_msgs/Image <-> numpy, and camera_info scaling.

cv_bridge is used where it imports (a ROS install); elsewhere the ROS-free codec of ``core.image_codec``,
which honours ``step`` (padded rows) and ``is_bigendian``. Both give the same arrays; tests check the codec.
"""

from __future__ import annotations

import numpy as np

from ..core.image_codec import ENCODINGS, ImageConversionError, decode_image, encode_image, validate_image

try:  # cv_bridge ships with ROS installs, not with the PyPI wheels
    from cv_bridge import CvBridge as _CvBridge

    _BRIDGE = _CvBridge()
except Exception:  # noqa: BLE001 - a broken cv_bridge (e.g. NumPy 2 ABI) must not stop the node
    _BRIDGE = None

__all__ = [
    "ENCODINGS",
    "ImageConversionError",
    "array_to_image_msg",
    "cv_bridge_available",
    "decode_image",
    "image_msg_to_array",
    "scale_camera_info",
]


def cv_bridge_available() -> bool:
    return _BRIDGE is not None


def image_msg_to_array(msg, max_pixels: int = 0, min_side: int = 1) -> tuple[np.ndarray, str]:
    """Return (HxW or HxWx3 array in native byte order, colour order) for a sensor_msgs/Image (cv_bridge if present)."""
    spec = validate_image(msg, max_pixels, min_side)
    if _BRIDGE is not None:
        return np.ascontiguousarray(_BRIDGE.imgmsg_to_cv2(msg, desired_encoding="passthrough")), spec.color_order
    return decode_image(msg, max_pixels, min_side)


def array_to_image_msg(arr: np.ndarray, encoding: str, header=None):
    """Build a sensor_msgs/Image (native byte order, unpadded rows) from an array of the encoding's type."""
    from sensor_msgs.msg import Image

    fields = encode_image(arr, encoding)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width, msg.encoding = fields.height, fields.width, fields.encoding
    msg.is_bigendian, msg.step, msg.data = fields.is_bigendian, fields.step, fields.data
    return msg


def camera_info_problem(info, width: int, height: int, scale: int = 1) -> str | None:
    """Why a CameraInfo cannot describe an image of ``width`` x ``height`` (None when it can): its size must be
    the image's, K and P finite, and the scaled size must fit the message's uint32 fields."""
    if (info.width, info.height) != (width, height):
        return f"camera_info is {info.width}x{info.height}, the image {width}x{height}"
    if not (np.all(np.isfinite(np.asarray(info.k, dtype=float))) and np.all(np.isfinite(np.asarray(info.p, float)))):
        return "camera_info has non-finite intrinsics (K or P)"
    if max(width, height) * scale >= 2**32:
        return f"camera_info size {width}x{height} overflows at x{scale}"
    return None


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
