"""rclpy sensor_msgs/Image and CompressedImage <-> NumPy, and camera_info scaling.

Decoding and the encoding rule are ``core.image_codec``'s (shared with the bag tooling): camera encodings (Bayer,
YUV, alpha, OpenCV types) are converted once to a display encoding, which the outputs keep. cv_bridge reads the
raw bytes where it imports (a ROS install); elsewhere the codec does, honouring ``step`` and ``is_bigendian``.
"""

from __future__ import annotations

import array

import numpy as np

from ..core.image_codec import (
    ENCODINGS,
    DecodedImage,
    ImageConversionError,
    decode_compressed,
    decode_image,
    encode_compressed,
    encode_image,
    raw_array,
    to_display,
    validate_image,
)

try:  # cv_bridge ships with ROS installs, not with the PyPI wheels
    from cv_bridge import CvBridge as _CvBridge

    _BRIDGE = _CvBridge()
except Exception:  # noqa: BLE001 - a broken cv_bridge (e.g. NumPy 2 ABI) must not stop the node
    _BRIDGE = None

__all__ = [
    "ENCODINGS",
    "DecodedImage",
    "ImageConversionError",
    "array_to_compressed_msg",
    "array_to_image_msg",
    "camera_info_problem",
    "cv_bridge_available",
    "decode_image",
    "image_msg_to_array",
    "scale_camera_info",
]


def cv_bridge_available() -> bool:
    return _BRIDGE is not None


def image_msg_to_array(msg, max_pixels: int = 0, min_side: int = 1) -> DecodedImage:
    """A sensor_msgs/Image or CompressedImage as a frame in its display encoding (cv_bridge for raw bytes if
    present). Raises :class:`ImageConversionError` with the reason for anything unreadable."""
    if hasattr(msg, "format"):  # CompressedImage
        return decode_compressed(msg, max_pixels, min_side)
    if _BRIDGE is None:
        return to_display(raw_array(msg, max_pixels, min_side), msg.encoding)
    validate_image(msg, max_pixels, min_side)
    return to_display(np.ascontiguousarray(_BRIDGE.imgmsg_to_cv2(msg, desired_encoding="passthrough")), msg.encoding)


def array_to_image_msg(arr: np.ndarray, encoding: str, header=None):
    """Build a sensor_msgs/Image (native byte order, unpadded rows) from an array of the encoding's type. The
    pixels are copied once, straight from the array's memory into the message's ``array('B')``."""
    from sensor_msgs.msg import Image

    fields = encode_image(arr, encoding)
    data = array.array("B")
    data.frombytes(fields.data)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width, msg.encoding = fields.height, fields.width, fields.encoding
    msg.is_bigendian, msg.step, msg.data = fields.is_bigendian, fields.step, data
    return msg


def array_to_compressed_msg(arr: np.ndarray, encoding: str, fmt: str, jpeg_quality: int, png_level: int, header):
    """A sensor_msgs/CompressedImage (jpeg or png) as image_transport's compressed plugin publishes it."""
    from sensor_msgs.msg import CompressedImage

    msg = CompressedImage(header=header)
    msg.format, data = encode_compressed(arr, encoding, fmt, jpeg_quality, png_level)
    msg.data = array.array("B", data)
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
