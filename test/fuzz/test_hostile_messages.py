"""Issue 19: hundreds of randomized hostile Image, CompressedImage and CameraInfo messages from another process.
The node stays up and keeps serving, every frame it received is accounted for (published, dropped, failed or
idle), and its memory stays bounded."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="the ROS 2 Python runtime (ros-jazzy-rclpy wheels) is not installed")
pytestmark = [pytest.mark.ros, pytest.mark.slow]

from ros_probe import RosProbe, start_test_node, stop_process  # noqa: E402

from srdb_ros.core.image_codec import ENCODINGS  # noqa: E402
from srdb_ros.evaluation.soak import rss_mb  # noqa: E402
from srdb_ros.ros.conversions import array_to_image_msg  # noqa: E402

SEED = 19
MESSAGES = 300  # per camera and transport phase
RSS_GROWTH_LIMIT_MB = 60.0


@pytest.fixture(scope="module")
def node(student_weights, tmp_path_factory):
    log = tmp_path_factory.mktemp("fuzz") / "node.log"
    params = (f"weights_path:={student_weights}", "max_pixels:=40000", "log_every_n:=0", "diagnostics.period:=0.2")
    proc = start_test_node(log, *params, namespace="/fuzz")
    yield proc, log
    stop_process(proc)


@pytest.fixture(scope="module")
def probe(node):
    probe = RosProbe("srdb_fuzz_probe", namespace="/fuzz")
    assert probe.wait_for_node(90), Path(node[1]).read_text()
    yield probe
    probe.close()


def _text(rng, n: int) -> str:
    return "".join(chr(c) for c in rng.integers(33, 127, n))


def hostile_image(rng, i: int):
    """A random sensor_msgs/Image: valid, or wrong in one or several fields."""
    from sensor_msgs.msg import Image

    kind = rng.integers(0, 8)
    h, w = (int(v) for v in rng.integers(1, 40, 2))
    if kind == 0:  # valid, in a random accepted encoding
        msg = array_to_image_msg(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "rgb8")
        msg.encoding = str(rng.choice(["rgb8", "bgr8", "8UC3"]))
    else:
        msg = Image()
        msg.encoding = {
            1: _text(rng, int(rng.integers(0, 3000))),  # garbage, up to 3000 characters
            2: str(rng.choice(ENCODINGS)),  # a real encoding with sizes that do not fit it
            3: "bayer_rggb8",
            4: "yuv422",
            5: "32FC1",
            6: "mono16",
            7: "rgb8",
        }[int(kind)]
        msg.height = int(rng.choice([0, 1, 3, h, 2**31 - 1, 2**32 - 1]))
        msg.width = int(rng.choice([0, 1, 3, w, 2**31 - 1, 2**32 - 1]))
        msg.step = int(rng.choice([0, 1, w, 3 * w, 4 * w, 2**32 - 1]))
        msg.is_bigendian = int(rng.integers(0, 2))
        msg.data = rng.integers(0, 256, int(rng.integers(0, 6000)), dtype=np.uint8).tobytes()
    msg.header.stamp.sec = 10_000 + i
    msg.header.stamp.nanosec = int(rng.integers(0, 10**9))
    msg.header.frame_id = _text(rng, int(rng.integers(0, 200)))
    return msg


def hostile_camera_info(rng):
    from sensor_msgs.msg import CameraInfo

    info = CameraInfo()
    info.width, info.height = (int(v) for v in rng.choice([0, 20, 32, 640, 2**31, 2**32 - 1], 2))
    info.k = [float(v) for v in rng.choice([np.nan, np.inf, -1.0, 0.0, 50.0, 1e308], 9)]
    info.p = [float(v) for v in rng.choice([np.nan, 0.0, 50.0, 1e308], 12)]
    info.d = [float(v) for v in rng.random(int(rng.integers(0, 20)))]
    info.distortion_model = _text(rng, int(rng.integers(0, 100)))
    return info


def hostile_compressed(rng, i: int):
    import cv2
    from sensor_msgs.msg import CompressedImage

    good = cv2.imencode(str(rng.choice([".png", ".jpg"])), rng.integers(0, 256, (16, 24, 3), dtype=np.uint8))[1]
    data = good.tobytes()
    kind = rng.integers(0, 5)
    if kind == 1:
        data = data[: int(rng.integers(0, len(data)))]  # cut short
    elif kind == 2:
        data = rng.integers(0, 256, int(rng.integers(0, 4000)), dtype=np.uint8).tobytes()  # noise
    elif kind == 3:  # a PNG header that declares a huge image
        data = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (60000).to_bytes(4, "big") * 2 + data[24:]
    msg = CompressedImage(format=str(rng.choice(["jpeg", "png", "rgb8; jpeg compressed bgr8", _text(rng, 40)])))
    msg.data = data
    msg.header.stamp.sec = 20_000 + i
    return msg


def _values(probe, camera: str) -> dict[str, str]:
    statuses = [
        s for a in probe.messages("/diagnostics") for s in a.status if s.name == f"/fuzz/enhance_node: {camera}"
    ]
    return {kv.key: kv.value for kv in statuses[-1].values} if statuses else {}


def _settled(probe, camera: str) -> dict[str, int]:
    """Counters once the node has handled everything it received (two equal diagnostics 1 s apart)."""
    keys = ("frames received", "frames published", "frames dropped", "frames failed", "frames idle (no subscribers)")
    last = None
    for _ in range(60):
        values = _values(probe, camera)
        now = {k: int(values.get(k, -1)) for k in keys}
        if now == last:
            return now
        last = now
        time.sleep(1.0)
    raise AssertionError(f"{camera} counters never settled: {last}")


def _serves(probe, stamp: int) -> bool:
    frame = array_to_image_msg(np.full((16, 16, 3), 100, np.uint8), "rgb8")
    frame.header.stamp.sec = stamp
    return probe.wait_for(
        lambda: any(m.header.stamp.sec == stamp for m in probe.messages("eo/deblurred/image_raw")),
        republish=lambda: probe.pubs["eo"].publish(frame),
        timeout=30,
    )


def test_hostile_frames_never_take_the_node_down_and_are_all_counted(node, probe):
    proc, log = node
    assert _serves(probe, 1)  # warm: the model has run once
    rss_before = rss_mb(proc.pid)
    rng = np.random.default_rng(SEED)
    for i in range(MESSAGES):
        probe.pubs[str(rng.choice(["eo", "ir"]))].publish(hostile_image(rng, i))
        if i % 3 == 0:
            probe.pubs[str(rng.choice(["eo_info", "ir_info"]))].publish(hostile_camera_info(rng))
        time.sleep(0.004)
    assert probe.set_parameter("eo.transport", "compressed").successful
    assert probe.wait_for(lambda: probe.pubs["eo_compressed"].get_subscription_count() > 0, timeout=10)
    for i in range(MESSAGES // 3):
        probe.pubs["eo_compressed"].publish(hostile_compressed(rng, i))
        time.sleep(0.004)
    assert probe.set_parameter("eo.transport", "raw").successful
    assert proc.poll() is None, log.read_text()[-3000:]
    for camera in ("eo", "ir"):
        c = _settled(probe, camera)
        assert c["frames received"] > 50, (camera, c)
        assert c["frames failed"] > 10, (camera, c)
        accounted = c["frames published"] + c["frames dropped"] + c["frames failed"] + c["frames idle (no subscribers)"]
        assert accounted == c["frames received"], (camera, c)
    assert probe.wait_for(lambda: probe.pubs["eo"].get_subscription_count() > 0, timeout=10)
    assert _serves(probe, 2)  # still serving
    growth = rss_mb(proc.pid) - rss_before
    assert growth < RSS_GROWTH_LIMIT_MB, f"RSS grew {growth:.1f} MB"
    text = log.read_text()
    assert "Traceback" not in text
    assert max(len(line) for line in text.splitlines()) < 1000  # a 3000-character encoding is never logged whole
    for a in probe.messages("/diagnostics"):
        for status in a.status:
            assert len(status.message) <= 200 and all(len(kv.value) <= 200 for kv in status.values)
