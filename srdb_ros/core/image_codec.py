"""sensor_msgs/Image and CompressedImage <-> NumPy arrays, without ROS: the one decoder and encoder that the node
(rclpy messages) and the bag tooling (rosbags messages) share.

Decoding honours ``step`` (padded rows) and ``is_bigendian``, then converts camera encodings once to a *display
encoding* the network pipeline reads, with rosbags-image's OpenCV conversions (debayer, YUV, alpha):

==========================================================  =========================================
input encoding                                               decoded (and output) encoding
==========================================================  =========================================
rgb8, bgr8, mono8, mono16, rgb16, bgr16, 16UC1, 32FC1        unchanged
bayer_rggb8, bayer_bggr8, bayer_gbrg8, bayer_grbg8, yuv422,  rgb8
uyvy, yuv422_yuy2, yuyv, rgba8
bayer_*16, rgba16                                            rgb16
bgra8 / bgra16                                               bgr8 / bgr16 (alpha dropped)
8UC1 / 8UC3                                                  mono8 / bgr8 (OpenCV's channel order)
CompressedImage (jpeg, png, 16-bit png)                      bgr8, mono8, mono16 or bgr16 as decoded
==========================================================  =========================================

16-bit and 32FC1 frames are *radiometric* (thermal counts, temperatures): they go through gain control and
outputs are mapped back to the input's units.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

DISPLAY_ENCODINGS: dict[str, tuple[type, int, str]] = {  # encoding: (dtype, channels, colour order)
    "rgb8": (np.uint8, 3, "rgb"),
    "bgr8": (np.uint8, 3, "bgr"),
    "mono8": (np.uint8, 1, "mono"),
    "mono16": (np.uint16, 1, "mono"),
    "rgb16": (np.uint16, 3, "rgb"),
    "bgr16": (np.uint16, 3, "bgr"),
    "16UC1": (np.uint16, 1, "mono"),
    "32FC1": (np.float32, 1, "mono"),
}
CONVERTED_ENCODINGS: dict[str, str] = {  # camera encoding: display encoding it is converted to
    **{f"bayer_{p}8": "rgb8" for p in ("rggb", "bggr", "gbrg", "grbg")},
    **{f"bayer_{p}16": "rgb16" for p in ("rggb", "bggr", "gbrg", "grbg")},
    "yuv422": "rgb8",
    "uyvy": "rgb8",
    "yuv422_yuy2": "rgb8",
    "yuyv": "rgb8",
    "rgba8": "rgb8",
    "bgra8": "bgr8",
    "rgba16": "rgb16",
    "bgra16": "bgr16",
    "8UC1": "mono8",
    "8UC3": "bgr8",
}
ENCODINGS = (*DISPLAY_ENCODINGS, *CONVERTED_ENCODINGS)  # every encoding the decoder accepts
REINTERPRETED = frozenset({"8UC1", "8UC3"})  # OpenCV-typed encodings: the same bytes, only renamed
COMPRESSED_FORMATS = ("jpeg", "png")


class ImageConversionError(ValueError):
    """The message cannot be read as an image (unsupported encoding, bad sizes, short or corrupt data)."""


@dataclass(frozen=True)
class DecodedImage:
    """A decoded frame: HxW or HxWxC array in native byte order, in a display encoding."""

    array: np.ndarray
    encoding: str

    @property
    def color_order(self) -> str:
        return DISPLAY_ENCODINGS[self.encoding][2]

    @property
    def radiometric(self) -> bool:
        """16-bit counts or 32-bit floats: gain control maps them to the network's range and back."""
        return self.array.dtype != np.uint8


@dataclass(frozen=True)
class ImageFields:
    """The payload fields of a sensor_msgs/Image (the header is the caller's); ``data`` is a byte view of the
    array's memory (no copy is made here)."""

    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: memoryview


def _layout(encoding: str) -> tuple[np.dtype, int]:
    """(dtype, channels) of the bytes of an accepted encoding (rosbags-image's table)."""
    from rosbags.image.image import to_cvtype

    _, _, typestr, channels = to_cvtype(encoding)
    return np.dtype(typestr), channels


def _shown(text: str) -> str:
    return text if len(text) <= 32 else text[:29] + "..."


def _check_size(h: int, w: int, max_pixels: int, min_side: int) -> None:
    if h < min_side or w < min_side:
        raise ImageConversionError(f"image {w}x{h} is smaller than the minimum side {min_side}")
    if max_pixels and h * w > max_pixels:
        raise ImageConversionError(f"image {w}x{h} exceeds max_pixels={max_pixels}")


def validate_image(msg, max_pixels: int = 0, min_side: int = 1) -> tuple[np.dtype, int]:
    """(dtype, channels) of the message's bytes, or :class:`ImageConversionError` saying what is wrong with it."""
    if msg.encoding not in ENCODINGS:
        raise ImageConversionError(f"unsupported encoding {_shown(msg.encoding)!r}; supported: {', '.join(ENCODINGS)}")
    dtype, channels = _layout(msg.encoding)
    h, w = int(msg.height), int(msg.width)
    _check_size(h, w, max_pixels, min_side)
    if msg.encoding.startswith("bayer_") and (h % 2 or w % 2):
        raise ImageConversionError(f"a Bayer image needs even sides, got {w}x{h}")
    if msg.encoding in ("yuv422", "uyvy", "yuv422_yuy2", "yuyv") and w % 2:
        raise ImageConversionError(f"a YUV 4:2:2 image needs an even width, got {w}")
    row_bytes = w * channels * dtype.itemsize
    if msg.step < row_bytes:
        raise ImageConversionError(f"step {msg.step} is less than width*channels*bytes = {row_bytes}")
    if len(msg.data) != msg.step * h:
        raise ImageConversionError(f"data has {len(msg.data)} bytes, expected step*height = {msg.step * h}")
    return dtype, channels


def raw_array(msg, max_pixels: int = 0, min_side: int = 1) -> np.ndarray:
    """The message's pixels as stored (HxW or HxWxC, native byte order), a view of ``msg.data`` where possible."""
    dtype, channels = validate_image(msg, max_pixels, min_side)
    h, w = int(msg.height), int(msg.width)
    row_bytes = w * channels * dtype.itemsize
    raw = np.frombuffer(msg.data, dtype=np.uint8).reshape(h, msg.step)
    if msg.step != row_bytes or row_bytes % dtype.itemsize:
        raw = np.ascontiguousarray(raw[:, :row_bytes])
    arr = raw.view(dtype.newbyteorder(">" if msg.is_bigendian else "<"))
    arr = arr.reshape((h, w) if channels == 1 else (h, w, channels))
    if arr.dtype.byteorder not in ("=", "|", _native()):
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def to_display(arr: np.ndarray, encoding: str) -> DecodedImage:
    """Convert an array in a camera encoding to its display encoding (see the module's table)."""
    if encoding in DISPLAY_ENCODINGS:
        return DecodedImage(arr, encoding)
    target = CONVERTED_ENCODINGS.get(encoding)
    if target is None:
        raise ImageConversionError(f"unsupported encoding {_shown(encoding)!r}; supported: {', '.join(ENCODINGS)}")
    if encoding in REINTERPRETED:
        return DecodedImage(arr, target)
    from rosbags.image.image import convert_color

    return DecodedImage(np.ascontiguousarray(convert_color(arr, encoding, target)), target)


def decode_image(msg, max_pixels: int = 0, min_side: int = 1) -> DecodedImage:
    """Any object with sensor_msgs/Image fields, decoded and converted to its display encoding."""
    return to_display(raw_array(msg, max_pixels, min_side), msg.encoding)


def decode_compressed(msg, max_pixels: int = 0, min_side: int = 1) -> DecodedImage:
    """A sensor_msgs/CompressedImage (image_transport's ``compressed``: jpeg or png, 8 or 16 bit)."""
    import cv2

    fmt = str(msg.format).lower()
    if "compresseddepth" in fmt:
        raise ImageConversionError("compressedDepth images are not supported; use the compressed transport")
    if fmt and not any(f in fmt for f in COMPRESSED_FORMATS):
        raise ImageConversionError(f"unsupported compressed format {_shown(msg.format)!r}; supported: jpeg, png")
    data = bytes(msg.data[:65536]) if len(msg.data) > 65536 else bytes(msg.data)
    declared = compressed_size(data)
    if declared is not None:  # refuse before decoding: a small file can declare gigapixels
        _check_size(declared[1], declared[0], max_pixels, min_side)
    arr = cv2.imdecode(np.frombuffer(msg.data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageConversionError(f"cannot decode the {len(msg.data)}-byte {fmt or 'compressed'} image")
    _check_size(arr.shape[0], arr.shape[1], max_pixels, min_side)
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    if channels == 4:
        arr = np.ascontiguousarray(arr[:, :, :3])
    elif channels == 2:  # grey + alpha
        arr = np.ascontiguousarray(arr[:, :, 0])
    if arr.dtype == np.uint8:
        return DecodedImage(arr, "mono8" if arr.ndim == 2 else "bgr8")
    if arr.dtype == np.uint16:
        return DecodedImage(arr, "mono16" if arr.ndim == 2 else "bgr16")
    raise ImageConversionError(f"compressed image decodes to unsupported type {arr.dtype}")


def compressed_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) a PNG or JPEG stream declares in its header (None when it cannot be read from ``head``)."""
    import struct

    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 24 and head[12:16] == b"IHDR":
        return struct.unpack(">II", head[16:24])
    if head[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 <= len(head):
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame: the image size
            height, width = struct.unpack(">HH", head[i + 5 : i + 9])
            return width, height
        i += 2 + struct.unpack(">H", head[i + 2 : i + 4])[0]
    return None


def encode_compressed(arr: np.ndarray, encoding: str, fmt: str, jpeg_quality: int = 95, png_level: int = 3):
    """(format, bytes) of a sensor_msgs/CompressedImage as image_transport's ``compressed`` plugin writes it:
    format ``"<encoding>; jpeg compressed bgr8"`` (JPEG: 8 bit, colour as bgr8, 16-bit values scaled to 8) or
    ``"<encoding>; png compressed bgr16"`` (PNG keeps 16 bit). Float images cannot be compressed."""
    import cv2

    if fmt not in COMPRESSED_FORMATS:
        raise ImageConversionError(f"compressed outputs are {', '.join(COMPRESSED_FORMATS)}, not {_shown(fmt)!r}")
    spec = DISPLAY_ENCODINGS.get(encoding)
    if spec is None or spec[0] is np.float32:
        raise ImageConversionError(f"{_shown(encoding)} images cannot be compressed (jpeg and png hold integers)")
    dtype, channels, order = spec
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if fmt == "jpeg" and dtype is np.uint16:
        arr = (arr >> 8).astype(np.uint8)
    if channels == 3 and order == "rgb":
        arr = arr[:, :, ::-1]
    depth = 8 if arr.dtype == np.uint8 else 16
    target = f"{'bgr' if channels == 3 else 'mono'}{depth}"
    if fmt == "jpeg":
        ok, data = cv2.imencode(".jpg", arr, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    else:
        ok, data = cv2.imencode(".png", arr, [cv2.IMWRITE_PNG_COMPRESSION, int(png_level)])
    if not ok:
        raise ImageConversionError(f"{fmt} encoding of a {arr.shape} {encoding} image failed")
    return f"{encoding}; {fmt} compressed {target}", data.tobytes()


def encode_image(arr: np.ndarray, encoding: str) -> ImageFields:
    """Image fields (native byte order, unpadded rows) for an array in a display encoding."""
    spec = DISPLAY_ENCODINGS.get(encoding)
    if spec is None:
        raise ImageConversionError(f"cannot encode {_shown(encoding)!r}; outputs use {', '.join(DISPLAY_ENCODINGS)}")
    dtype, want, _ = spec
    arr = np.ascontiguousarray(arr, dtype=dtype)
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    if channels != want:
        raise ImageConversionError(f"{encoding} needs {want} channel(s), array has {channels}")
    return ImageFields(
        height=int(arr.shape[0]),
        width=int(arr.shape[1]),
        encoding=encoding,
        is_bigendian=int(sys.byteorder == "big"),
        step=int(arr.shape[1] * channels * arr.itemsize),
        data=memoryview(arr.reshape(-1).view(np.uint8)),
    )


def _native() -> str:
    return "<" if sys.byteorder == "little" else ">"
