"""Issue 19: a signal at any moment of start-up or while streaming ends the node with exit 0, no traceback."""

from __future__ import annotations

import signal
import time

import pytest

pytest.importorskip("rclpy", reason="the ROS 2 Python runtime (ros-jazzy-rclpy wheels) is not installed")
pytestmark = [pytest.mark.ros, pytest.mark.slow]

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
    try:
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert code == 0, (delay, sig, code, text[-2000:])
    assert "Traceback" not in text and "context is invalid" not in text, text[-2000:]
