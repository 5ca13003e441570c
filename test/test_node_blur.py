"""Issue 31: the blur-aware node across processes: <cam>/blur with the input's header, sharp frames passed through
byte for byte, blurred frames deblurred, and the counts on /diagnostics (the bundled student's estimator)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy", reason="the ROS 2 Python runtime (ros-jazzy-rclpy wheels) is not installed")
pytestmark = pytest.mark.ros

from geometry_msgs.msg import Vector3Stamped  # noqa: E402
from ros_probe import RosProbe, start_test_node, stop_process  # noqa: E402

from srdb_ros.data.blur import MotionBlurSynthesizer  # noqa: E402
from srdb_ros.ros.conversions import array_to_image_msg  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARP_STAMP, BLURRED_STAMP = 7, 8


@pytest.fixture(scope="module")
def blur_node(tmp_path_factory):
    log = tmp_path_factory.mktemp("blur_node") / "node.log"
    proc = start_test_node(log, "eo.min_blur_px:=0.0", "ir.enabled:=false", "diagnostics.period:=0.5")
    probe = RosProbe(name="srdb_blur_probe")
    probe.subscribe("eo/blur", Vector3Stamped)
    assert probe.wait_for_node(90), log.read_text()
    yield probe, log
    probe.close()
    stop_process(proc)


def _frames() -> tuple[np.ndarray, np.ndarray]:
    """A sharp photo crop and the same crop blurred by a straight 20 px motion (no noise)."""
    photo = cv2.cvtColor(cv2.imread(str(ROOT / "samples" / "eo" / "chelsea.png")), cv2.COLOR_BGR2RGB)
    sharp = np.ascontiguousarray(photo[60:220, 150:310])
    motion = MotionBlurSynthesizer(min_length=20, max_length=20, motion_probs=(0, 1, 0, 0), noise_prob=0.0, seed=3)
    return sharp, motion.apply(sharp, 0)


def _msg(image: np.ndarray, stamp: int):
    msg = array_to_image_msg(image, "rgb8")
    msg.header.stamp.sec, msg.header.frame_id = stamp, "eo_optical"
    return msg


def _by_stamp(probe, topic: str, stamp: int):
    return next((m for m in probe.messages(topic) if m.header.stamp.sec == stamp), None)


def _answer(probe, log, msg, stamp: int):
    """Publish ``msg`` until both its deblurred output and its blur estimate are back; returns both."""
    ok = probe.wait_for(
        lambda: _by_stamp(probe, "eo/deblurred/image_raw", stamp) and _by_stamp(probe, "eo/blur", stamp),
        republish=lambda: probe.pubs["eo"].publish(msg),
        timeout=60,
    )
    assert ok, log.read_text()[-2000:]
    return _by_stamp(probe, "eo/deblurred/image_raw", stamp), _by_stamp(probe, "eo/blur", stamp)


def test_sharp_frames_pass_through_and_blurred_ones_are_deblurred(blur_node):
    """With min_blur_px between the two frames' estimates, the sharp frame comes back byte for byte and the
    blurred one deblurred; both estimates carry their input's header. (Where the threshold can sit for any frame
    is the estimator's accuracy: test_suite.py and the model card.)"""
    probe, log = blur_node
    sharp, blurred = _frames()
    _, est_sharp = _answer(probe, log, _msg(sharp, 5), 5)
    _, est_blurred = _answer(probe, log, _msg(blurred, 6), 6)
    assert est_sharp.header.frame_id == est_blurred.header.frame_id == "eo_optical"
    assert est_sharp.vector.z < est_blurred.vector.z  # the straight 20 px smear measures longer than the photo
    assert est_blurred.vector.z == pytest.approx(np.hypot(est_blurred.vector.x, est_blurred.vector.y), rel=1e-3)
    threshold = (est_sharp.vector.z + est_blurred.vector.z) / 2
    assert probe.set_parameter("eo.min_blur_px", float(threshold)).successful
    sent = {SHARP_STAMP: _msg(sharp, SHARP_STAMP), BLURRED_STAMP: _msg(blurred, BLURRED_STAMP)}
    out_sharp, _ = _answer(probe, log, sent[SHARP_STAMP], SHARP_STAMP)
    out_blurred, _ = _answer(probe, log, sent[BLURRED_STAMP], BLURRED_STAMP)
    assert bytes(out_sharp.data) == bytes(sent[SHARP_STAMP].data)  # byte for byte, same header
    assert out_sharp.header.frame_id == "eo_optical" and out_sharp.header.stamp.sec == SHARP_STAMP
    assert bytes(out_blurred.data) != bytes(sent[BLURRED_STAMP].data)  # deblurred


def test_diagnostics_count_passed_frames_and_the_blur_percentiles(blur_node):
    probe, _ = blur_node

    def values():
        for msg in reversed(probe.messages("/diagnostics")):
            for status in msg.status:
                if status.name.endswith(": eo"):
                    return {kv.key: kv.value for kv in status.values}
        return {}

    assert probe.wait_for(lambda: int(values().get("frames passed sharp", "0")) >= 1, timeout=30)
    assert float(values()["blur p95 (px)"]) >= float(values()["blur p50 (px)"]) >= 0.0


def test_min_blur_px_changes_at_runtime_and_rejects_negative_values(blur_node):
    probe, _ = blur_node
    assert not probe.set_parameter("eo.min_blur_px", -1.0).successful
    assert probe.set_parameter("eo.min_blur_px", 0.0).successful
    sharp, _ = _frames()
    msg = _msg(sharp, 9)
    assert probe.wait_for(
        lambda: _by_stamp(probe, "eo/deblurred/image_raw", 9), republish=lambda: probe.pubs["eo"].publish(msg)
    )
    assert bytes(_by_stamp(probe, "eo/deblurred/image_raw", 9).data) != bytes(msg.data)  # 0: every frame deblurred
