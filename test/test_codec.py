"""Issue 15: camera encodings and compressed images decode to the right pixels (checked against hand-built
mosaics and OpenCV's encoders), and radiometric 32FC1 frames keep their units through the enhancer."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from srdb_ros.core.image_codec import (
    CONVERTED_ENCODINGS,
    DISPLAY_ENCODINGS,
    ImageConversionError,
    compressed_size,
    decode_compressed,
    decode_image,
    encode_image,
)

RGB = (200, 100, 50)


def _msg(arr: np.ndarray, encoding: str, pad: int = 0):
    """A sensor_msgs/Image-shaped object (rows padded by ``pad`` bytes)."""
    h, w = arr.shape[:2]
    rows = arr.reshape(h, -1).view(np.uint8).reshape(h, -1)
    data = np.concatenate([rows, np.zeros((h, pad), np.uint8)], axis=1).tobytes()
    return SimpleNamespace(height=h, width=w, encoding=encoding, is_bigendian=0, step=rows.shape[1] + pad, data=data)


def _mosaic(pattern: str, h: int, w: int, rgb=RGB, dtype=np.uint8) -> np.ndarray:
    """A uniform colour as a Bayer mosaic: ``pattern`` names the colours of the 2x2 cell, row by row."""
    value = dict(zip("rgb", rgb))
    out = np.empty((h, w), dtype)
    for i, channel in enumerate(pattern):
        out[i // 2 :: 2, i % 2 :: 2] = value[channel]
    return out


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
@pytest.mark.parametrize("bits", [8, 16])
def test_bayer_mosaics_decode_to_their_colour(pattern, bits):
    dtype = np.uint8 if bits == 8 else np.uint16
    rgb = RGB if bits == 8 else tuple(v * 257 for v in RGB)
    decoded = decode_image(_msg(_mosaic(pattern, 16, 20, rgb, dtype), f"bayer_{pattern}{bits}", pad=4))
    assert decoded.encoding == ("rgb8" if bits == 8 else "rgb16") and decoded.color_order == "rgb"
    interior = decoded.array[2:-2, 2:-2].reshape(-1, 3)
    np.testing.assert_allclose(interior.mean(axis=0), rgb, atol=1)
    assert decoded.radiometric == (bits == 16)


def test_yuv422_alpha_and_opencv_types():
    rng = np.random.default_rng(0)
    grey = np.full((6, 8), 128, np.uint8)
    uyvy = np.stack([np.full_like(grey, 128), grey], axis=-1)  # U/V 128 (no colour), Y 128
    yuyv = uyvy[:, :, ::-1].copy()
    for arr, encoding in ((uyvy, "yuv422"), (uyvy, "uyvy"), (yuyv, "yuv422_yuy2"), (yuyv, "yuyv")):
        decoded = decode_image(_msg(arr, encoding))
        assert decoded.encoding == "rgb8" and decoded.array.shape == (6, 8, 3)
        assert np.abs(decoded.array.astype(int) - 128).max() <= 2
    rgba = rng.integers(0, 256, (5, 7, 4), dtype=np.uint8)
    np.testing.assert_array_equal(decode_image(_msg(rgba, "rgba8")).array, rgba[:, :, :3])
    bgra = decode_image(_msg(rgba, "bgra8"))
    assert bgra.encoding == "bgr8"
    np.testing.assert_array_equal(bgra.array, rgba[:, :, :3])
    mono = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    assert decode_image(_msg(mono, "8UC1")).encoding == "mono8"
    assert decode_image(_msg(rgba[:, :, :3].copy(), "8UC3")).encoding == "bgr8"


def test_every_accepted_encoding_decodes_to_an_encodable_display_encoding():
    rng = np.random.default_rng(1)
    from srdb_ros.core.image_codec import _layout

    for encoding in (*DISPLAY_ENCODINGS, *CONVERTED_ENCODINGS):
        dtype, channels = _layout(encoding)
        shape = (8, 10) if channels == 1 else (8, 10, channels)
        arr = (rng.random(shape) * 200).astype(dtype)
        decoded = decode_image(_msg(arr, encoding))
        fields = encode_image(decoded.array, decoded.encoding)
        assert (fields.height, fields.width) == (8, 10), encoding


@pytest.mark.parametrize(
    "msg, reason",
    [
        (_msg(np.zeros((5, 8), np.uint8), "bayer_rggb8"), "even sides"),
        (_msg(np.zeros((4, 5, 2), np.uint8), "yuv422"), "even width"),
        (_msg(np.zeros((4, 4), np.float64), "64FC1"), "unsupported encoding"),
        (_msg(np.zeros((4, 4), np.uint8), "nv12"), "unsupported encoding"),
    ],
)
def test_unsupported_or_inconsistent_frames_are_rejected(msg, reason):
    with pytest.raises(ImageConversionError, match=reason):
        decode_image(msg)


def test_compressed_png_jpeg_and_16bit_png():
    rng = np.random.default_rng(2)
    bgr = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    png = SimpleNamespace(format="rgb8; png compressed bgr8", data=cv2.imencode(".png", bgr)[1].tobytes())
    decoded = decode_compressed(png)
    assert decoded.encoding == "bgr8"
    np.testing.assert_array_equal(decoded.array, bgr)
    counts = rng.integers(0, 65535, (24, 32), dtype=np.uint16)
    png16 = SimpleNamespace(format="mono16; png compressed mono16", data=cv2.imencode(".png", counts)[1].tobytes())
    decoded = decode_compressed(png16)
    assert decoded.encoding == "mono16" and decoded.radiometric
    np.testing.assert_array_equal(decoded.array, counts)
    jpeg_bytes = cv2.imencode(".jpg", bgr)[1].tobytes()
    decoded = decode_compressed(SimpleNamespace(format="jpeg", data=jpeg_bytes))
    np.testing.assert_array_equal(decoded.array, cv2.imdecode(np.frombuffer(jpeg_bytes, np.uint8), cv2.IMREAD_COLOR))
    with pytest.raises(ImageConversionError, match="cannot decode"):
        decode_compressed(SimpleNamespace(format="jpeg", data=jpeg_bytes[:40]))
    with pytest.raises(ImageConversionError, match="compressedDepth"):
        decode_compressed(SimpleNamespace(format="16UC1; compressedDepth png", data=b"\0" * 12))
    with pytest.raises(ImageConversionError, match="exceeds max_pixels"):
        decode_compressed(png, max_pixels=100)
    assert compressed_size(png.data) == (32, 24) and compressed_size(jpeg_bytes) == (32, 24)


def test_a_compressed_image_declaring_gigapixels_is_refused_before_decoding(monkeypatch):
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0))
    bomb += chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
    monkeypatch.setattr(cv2, "imdecode", lambda *a: pytest.fail("decoded a frame over max_pixels"))
    with pytest.raises(ImageConversionError, match="60000x60000 exceeds max_pixels"):
        decode_compressed(SimpleNamespace(format="png", data=bomb), max_pixels=10_000_000)


def test_32fc1_temperatures_keep_their_units_through_the_enhancer(student_weights):
    from srdb_ros.inference import Enhancer, Frame, ModelFiles, create_backend

    rng = np.random.default_rng(3)
    kelvin = (290.0 + 20.0 * rng.random((24, 32))).astype(np.float32)
    kelvin[0, 0] = np.nan  # an invalid pixel
    decoded = decode_image(_msg(kelvin, "32FC1"))
    assert decoded.radiometric and decoded.encoding == "32FC1"
    enhancer = Enhancer(create_backend("torch", ModelFiles(weights=str(student_weights)), "cpu"))
    out = enhancer.enhance_batch([Frame(decoded.array, "sr", "mono", True)])[0].super_resolved
    assert out.dtype == np.float32 and out.shape == (96, 128) and np.isfinite(out).all()
    lo, hi = np.nanpercentile(kelvin, [1, 99])
    assert lo - 1e-3 <= out.min() and out.max() <= hi + 1e-3  # mapped back into the frame's gain-control range
    # the same frame as 16-bit centi-kelvin counts (the invalid pixel at the bottom) gives the same temperatures
    counts = np.rint(np.nan_to_num(kelvin, nan=290.0) * 100).astype(np.uint16)
    finite = kelvin.copy()
    finite[0, 0] = 290.0
    out_f = enhancer.enhance_batch([Frame(finite, "sr", "mono", True)])[0].super_resolved
    out_16 = enhancer.enhance(counts, "sr").super_resolved
    diff = np.abs(out_f - out_16 / 100.0)  # counts are rounded to 0.01 K on the way in and out
    assert diff.mean() < 0.02 and diff.max() < 0.3
