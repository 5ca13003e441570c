"""Compressed outputs: ``<cam>/<output>/image_raw/compressed`` as image_transport's compressed plugin writes it."""

from __future__ import annotations

import numpy as np
import pytest

from srdb_ros.core.image_codec import ImageConversionError, decode_compressed, encode_compressed


class _Compressed:
    def __init__(self, fmt: str, data: bytes) -> None:
        self.format, self.data = fmt, data


@pytest.mark.parametrize(
    ("encoding", "dtype", "shape", "fmt", "says"),
    [
        ("rgb8", np.uint8, (20, 30, 3), "png", "rgb8; png compressed bgr8"),
        ("bgr16", np.uint16, (20, 30, 3), "png", "bgr16; png compressed bgr16"),
        ("mono16", np.uint16, (20, 30), "png", "mono16; png compressed mono16"),
        ("mono8", np.uint8, (20, 30), "png", "mono8; png compressed mono8"),
        ("rgb8", np.uint8, (20, 30, 3), "jpeg", "rgb8; jpeg compressed bgr8"),
        ("mono16", np.uint16, (20, 30), "jpeg", "mono16; jpeg compressed mono8"),
    ],
)
def test_compressed_outputs_decode_back_as_the_compressed_transport_reads_them(encoding, dtype, shape, fmt, says):
    rng = np.random.default_rng(1)
    top = np.iinfo(dtype).max
    image = (np.linspace(0, top, shape[0] * shape[1]).reshape(shape[:2]) * 0.9).astype(dtype)
    if len(shape) == 3:
        image = np.stack([image, image[::-1], image[:, ::-1]], axis=2)
    image = np.clip(image.astype(np.int64) + rng.integers(0, 3, image.shape), 0, top).astype(dtype)
    text, data = encode_compressed(image, encoding, fmt, jpeg_quality=95, png_level=3)
    assert text == says
    decoded = decode_compressed(_Compressed(text, data))
    back = decoded.array
    if len(shape) == 3:
        assert decoded.encoding.startswith("bgr")
        back = back[:, :, ::-1] if encoding.startswith("rgb") else back
    if fmt == "png":
        assert back.dtype == image.dtype and np.array_equal(back, image)
    else:  # 8 bit: 16-bit values scaled to 8, then JPEG's loss
        expect = (image >> 8).astype(np.uint8) if dtype is np.uint16 else image
        assert np.abs(back.astype(int) - expect.astype(int)).mean() < 3


def test_float_outputs_are_not_compressed():
    with pytest.raises(ImageConversionError, match="cannot be compressed"):
        encode_compressed(np.zeros((4, 4), np.float32), "32FC1", "png")


@pytest.mark.ros
@pytest.mark.slow
def test_the_node_publishes_compressed_outputs_only_when_asked_and_only_while_subscribed(tmp_path, student_weights):
    pytest.importorskip("rclpy", reason="the ROS 2 Python runtime (ros-jazzy-rclpy wheels) is not installed")
    from ros_probe import RosProbe, stop_process
    from sensor_msgs.msg import CompressedImage, Image

    from srdb_ros.ros.conversions import array_to_image_msg, decode_image
    from srdb_ros.ros.launcher import start_node

    args = ["-p", "backend:=torch", "-p", "device:=cpu", "-p", f"weights_path:={student_weights}"]
    args += ["-p", "eo.compressed_outputs:=jpeg", "-p", "ir.compressed_outputs:=png", "-p", "eo.min_blur_px:=0.0"]
    proc = start_node(ros_args=args, log_path=tmp_path / "node.log")
    probe = RosProbe("srdb_compressed_probe", outputs=False)  # only compressed subscribers: still processed
    for topic in ("eo/deblurred/image_raw/compressed", "ir/super_resolved/image_raw/compressed"):
        probe.subscribe(topic, CompressedImage)
    rng = np.random.default_rng(0)
    eo = array_to_image_msg(rng.integers(0, 255, (24, 32, 3), np.uint8), "rgb8")
    ir = array_to_image_msg(rng.integers(0, 65535, (16, 20), np.uint16), "mono16")
    eo.header.stamp.sec = ir.header.stamp.sec = 7

    def publish():
        probe.pubs["eo"].publish(eo)
        probe.pubs["ir"].publish(ir)

    def got(topic):
        return [m for m in probe.messages(topic) if m.header.stamp.sec == 7]

    try:
        assert probe.wait_for_node(90), (tmp_path / "node.log").read_text()
        ok = probe.wait_for(
            lambda: got("eo/deblurred/image_raw/compressed") and got("ir/super_resolved/image_raw/compressed"),
            republish=publish,
            timeout=90,
        )
        assert ok, (tmp_path / "node.log").read_text()[-2000:]
        jpeg = got("eo/deblurred/image_raw/compressed")[-1]
        png = got("ir/super_resolved/image_raw/compressed")[-1]
        assert jpeg.format == "rgb8; jpeg compressed bgr8" and png.format == "mono16; png compressed mono16"
        assert decode_compressed(png).array.shape == (64, 80)
        probe.subscribe("ir/super_resolved/image_raw", Image)  # the raw output carries the same pixels
        ir.header.stamp.sec = 8
        assert probe.wait_for(lambda: probe.messages("ir/super_resolved/image_raw"), republish=publish, timeout=60)
        raw = probe.messages("ir/super_resolved/image_raw")[-1]

        def same():
            return [m for m in probe.messages("ir/super_resolved/image_raw/compressed") if m.header == raw.header]

        assert probe.wait_for(same, timeout=10)
        assert np.array_equal(decode_compressed(same()[-1]).array, decode_image(raw).array)
        topics = dict(probe.node.get_topic_names_and_types())
        assert "/eo/super_resolved/image_raw/compressed" not in topics  # eo's task is deblur only
    finally:
        probe.close()
        stop_process(proc)
