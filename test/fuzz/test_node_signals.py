"""Issue 19: a signal at any moment of start-up or while streaming ends the node with exit 0, no traceback."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("rclpy", reason="the ROS 2 Python runtime (ros-jazzy-rclpy wheels) is not installed")
pytestmark = [pytest.mark.ros, pytest.mark.slow]

from ros_probe import exit_code  # noqa: E402

from srdb_ros.ros.env import ros_environment  # noqa: E402
from srdb_ros.ros.launcher import start_node  # noqa: E402


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("delay", [0.2, 1.0, 2.5, 5.0])
def test_signal_during_start_up_exits_0_without_traceback(tmp_path, sig, delay, student_weights):
    log = tmp_path / "node.log"
    proc = start_node(
        ros_args=["-p", "backend:=torch", "-p", "device:=cpu", "-p", f"weights_path:={student_weights}"],
        log_path=log,
    )
    time.sleep(delay)
    proc.send_signal(sig)
    code = exit_code(proc, 60)
    text = log.read_text()
    assert code == 0, (delay, sig, code, text[-2000:])
    assert "Traceback" not in text and "context is invalid" not in text, text[-2000:]


# The node's start-up fails as PyTorch made it fail when SIGTERM arrived in the middle of loading the weights (a
# fresh-clone test run under load): the exception the signal raised, caught in C++ and raised as another error.
# rclpy shuts its context down on another thread, which under load came too late to tell the node that a signal,
# not a fault, ended its start-up; here it does not come at all.
CONVERTED_SIGTERM_NODE = """
import os, signal, sys, time
import rclpy.signals
import srdb_ros.ros.enhance_node as enhance_node

def start_up_that_sigterm_interrupts(*args, **kwargs):
    rclpy.signals.uninstall_signal_handlers()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # the handler raises here
    except BaseException as exc:
        raise RuntimeError("could not determine the shape of object type 'torch.storage.UntypedStorage'") from exc
    raise AssertionError("SIGTERM did not interrupt the start-up")

enhance_node.EnhanceNode = start_up_that_sigterm_interrupts
from srdb_ros.ros.entry import main
sys.exit(main(sys.argv))
"""


def test_a_sigterm_that_library_code_turns_into_another_error_still_exits_0(tmp_path):
    node = [sys.executable, "-c", CONVERTED_SIGTERM_NODE, "--ros-args", "-p", "backend:=torch"]
    result = subprocess.run(node, env=ros_environment(), capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "cannot start" not in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_a_slow_inference_exits_0_without_abort(tmp_path, sig, student_weights):
    """A large frame keeps the inference thread inside PyTorch for many seconds on CPU; a signal then must still
    end the node with exit 0 (the frame finished or abandoned), not with an abort at interpreter exit. A
    2400x1800 frame takes longer than the 10 s the node waits on 2 CPU cores, so there the frame is abandoned:
    the node says so and ends without finalising the interpreter under the running thread."""
    import numpy as np
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from ros_probe import RosProbe
    from sensor_msgs.msg import Image

    RELIABLE = ReliabilityPolicy.RELIABLE
    from srdb_ros.ros.conversions import array_to_image_msg

    log = tmp_path / "node.log"
    proc = start_node(
        ros_args=[
            *("-p", "backend:=torch", "-p", "device:=cpu", "-p", f"weights_path:={student_weights}"),
            *("-p", "input_qos:=reliable"),  # a 13 MB frame is not always delivered best-effort under load
            *("-p", "max_pixels:=5000000", "-p", "eo.min_blur_px:=0.0"),  # the whole network runs on it
        ],
        log_path=log,
    )
    probe = RosProbe("srdb_signal_probe")
    reliable = probe.node.create_publisher(Image, "eo/image_raw", QoSProfile(depth=1, reliability=RELIABLE))
    try:
        assert probe.wait_for(lambda: reliable.get_subscription_count() > 0, 90), log.read_text()[-2000:]
        frame = np.random.default_rng(0).integers(0, 256, (1800, 2400, 3), dtype=np.uint8)
        msg = array_to_image_msg(frame, "bgr8")

        def received() -> int:
            counts = [
                int(value.value)
                for diag in probe.messages("/diagnostics")
                for status in diag.status
                if status.name.endswith(": eo")
                for value in status.values
                if value.key == "frames received"
            ]
            return max(counts, default=0)

        assert probe.wait_for(lambda: received() > 0, 90, republish=lambda: reliable.publish(msg), period=2)
        time.sleep(2.0)  # the frame is inside the network now (it takes far longer than this on CPU)
        proc.send_signal(sig)
        code = proc.wait(timeout=60)
    finally:
        probe.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert code == 0, (sig, code, text[-2000:])
    assert "terminate called" not in text and "Traceback" not in text, text[-2000:]
    if not probe.messages("eo/deblurred/image_raw"):  # the frame did not finish: it was abandoned, and said so
        assert "was abandoned" in text, text[-2000:]
