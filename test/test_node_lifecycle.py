"""Issue 15: managed bring-up through the lifecycle services, lazy processing, QoS overrides and stale-input
diagnostics, each checked on a node in its own process. The tests run in order on one managed node."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="the ROS 2 Python runtime (ros-jazzy-rclpy wheels) is not installed")
pytestmark = pytest.mark.ros

from ros_probe import RosProbe, start_test_node, stop_process  # noqa: E402

from srdb_ros.ros.conversions import array_to_image_msg  # noqa: E402

NS = "/managed"
BEST_EFFORT_OUTPUT = f"{NS}/eo/deblurred/image_raw"


def _start(namespace: str, log: Path, *params: str) -> subprocess.Popen:
    return start_test_node(log, "managed:=true", *params, namespace=namespace)


@pytest.fixture(scope="module")
def managed(student_weights, tmp_path_factory):
    log = tmp_path_factory.mktemp("managed") / "node.log"
    proc = _start(
        NS,
        log,
        f"weights_path:={student_weights}",
        f"qos_overrides.{BEST_EFFORT_OUTPUT}.publisher.reliability:=best_effort",
        "diagnostics.period:=0.3",
        "diagnostics.stale_after:=1.0",
        "memory_budget_mb:=60.0",
    )
    yield proc, log
    stop_process(proc)


@pytest.fixture(scope="module")
def probe(managed):
    probe = RosProbe("srdb_lifecycle_probe", namespace=NS, outputs=False)
    lifecycle = Lifecycle(probe.node, f"{NS}/enhance_node")
    assert lifecycle.wait(60), managed[1].read_text()
    probe.lifecycle = lifecycle
    yield probe
    probe.close()


class Lifecycle:
    """A client of a lifecycle node's get_state and change_state services."""

    def __init__(self, node, name: str) -> None:
        from lifecycle_msgs.srv import ChangeState, GetState

        self.get = node.create_client(GetState, f"{name}/get_state")
        self.change = node.create_client(ChangeState, f"{name}/change_state")

    def wait(self, timeout: float) -> bool:
        return self.get.wait_for_service(timeout) and self.change.wait_for_service(timeout)

    def _call(self, client, request, timeout: float = 120.0, resend_after: float | None = None):
        """``resend_after``: send the request again after that many seconds without an answer (for idempotent
        requests: a request sent as the service is discovered can be lost before its reply path is matched)."""
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        sent = time.monotonic()
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.05)
            if resend_after is not None and time.monotonic() - sent > resend_after:
                future, sent = client.call_async(request), time.monotonic()
        assert future.done(), "no answer from the lifecycle service"
        return future.result()

    def state(self) -> str:
        from lifecycle_msgs.srv import GetState

        return self._call(self.get, GetState.Request(), resend_after=10.0).current_state.label

    # transition -> (the state it starts from, the state it ends in on success)
    ENDS = {
        "configure": ("unconfigured", "inactive"),
        "activate": ("inactive", "active"),
        "deactivate": ("active", "inactive"),
        "cleanup": ("inactive", "unconfigured"),
    }

    def transition(self, label: str, timeout: float = 120.0, check_after: float = 15.0) -> bool:
        """Request a transition and return its success. A request sent just after discovery can lose its answer
        (or itself) before the service's reply path is matched, and a transition is not idempotent, so after
        ``check_after`` s without an answer the node's state decides: at the goal, it succeeded; still at the
        start (not received, or failed back to it), the request is sent again; in between, it is still running."""
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        request = ChangeState.Request(transition=Transition(id=getattr(Transition, f"TRANSITION_{label.upper()}")))
        start, goal = self.ENDS[label]
        deadline = time.monotonic() + timeout
        future, sent = self.change.call_async(request), time.monotonic()
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.05)
            if time.monotonic() - sent > check_after:
                state = self.state()
                if state == goal:
                    return True
                if state == start:
                    future = self.change.call_async(request)
                sent = time.monotonic()
        assert future.done(), "no answer from the lifecycle service"
        return future.result().success


def _status(probe, camera: str = "eo"):
    statuses = [s for a in probe.messages("/diagnostics") for s in a.status if s.name == f"{NS}/enhance_node: {camera}"]
    return statuses[-1] if statuses else None


def _values(status) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values} if status else {}


def _frame(stamp: int):
    arr = np.random.default_rng(stamp).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    msg = array_to_image_msg(arr, "rgb8")
    msg.header.stamp.sec = stamp
    return msg


def test_managed_node_waits_unconfigured_without_topics(probe):
    assert probe.lifecycle.state() == "unconfigured"
    assert probe.wait_for(lambda: _status(probe) is not None, timeout=10)
    assert _status(probe).message.startswith("unconfigured")
    node = [s for a in probe.messages("/diagnostics") for s in a.status if s.name == f"{NS}/enhance_node: node"]
    assert node and node[-1].level == bytes([0]) and _values(node[-1])["state"] == "unconfigured"
    assert probe.node.count_publishers(BEST_EFFORT_OUTPUT) == 0
    assert probe.pubs["eo"].get_subscription_count() == 0


def test_configure_loads_and_activate_subscribes(probe):
    assert probe.lifecycle.transition("configure")
    assert probe.lifecycle.state() == "inactive"
    assert probe.wait_for(lambda: probe.node.count_publishers(BEST_EFFORT_OUTPUT) == 1, timeout=10)
    assert probe.pubs["eo"].get_subscription_count() == 0  # inactive: no input is read
    assert probe.wait_for(lambda: _values(_status(probe)).get("backend", "").startswith("torch"), timeout=10)
    assert probe.lifecycle.transition("activate")
    assert probe.lifecycle.state() == "active"
    assert probe.wait_for(lambda: probe.pubs["eo"].get_subscription_count() > 0, timeout=10)


def test_qos_override_parameter_takes_effect(probe):
    from rclpy.qos import ReliabilityPolicy

    def reliability(topic: str):
        infos = [i for i in probe.node.get_publishers_info_by_topic(topic) if i.node_name == "enhance_node"]
        return infos[0].qos_profile.reliability if infos else None

    assert probe.wait_for(lambda: reliability(BEST_EFFORT_OUTPUT) is not None, timeout=10)
    assert reliability(BEST_EFFORT_OUTPUT) == ReliabilityPolicy.BEST_EFFORT
    assert reliability(f"{NS}/ir/super_resolved/image_raw") == ReliabilityPolicy.RELIABLE  # the default


def test_no_inference_without_subscribers(probe):
    frame = _frame(10)
    assert probe.wait_for(
        lambda: int(_values(_status(probe)).get("frames idle (no subscribers)", 0)) >= 3,
        republish=lambda: probe.pubs["eo"].publish(frame),
        timeout=20,
    )
    status = _status(probe)
    assert status.message == "idle: no subscribers" and status.level == bytes([0])
    assert _values(status)["frames published"] == "0"
    assert "infer p50 (ms)" not in _values(status)  # nothing was inferred
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    probe.subscribe("eo/deblurred/image_raw", Image, QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT))
    assert probe.wait_for(
        lambda: any(m.header.stamp.sec == 10 for m in probe.messages("eo/deblurred/image_raw")),
        republish=lambda: probe.pubs["eo"].publish(frame),
        timeout=30,
    )


def test_frame_limit_follows_the_memory_budget(probe, managed):
    """60 MB at 2 kB per deblurred pixel (inference.memory's measured table): frames over 30000 pixels are refused."""
    from srdb_ros.inference.memory import max_pixels_for

    limit = max_pixels_for("deblur", "cpu", 60_000_000)
    assert limit == 30000
    big = array_to_image_msg(np.zeros((200, 240, 3), np.uint8), "rgb8")  # 48000 pixels
    assert probe.wait_for(
        lambda: f"exceeds max_pixels={limit}" in managed[1].read_text(),
        republish=lambda: probe.pubs["eo"].publish(big),
        timeout=20,
    )
    assert "frame limit eo (deblur) 0.0 MP" in managed[1].read_text()


def test_diagnostics_warn_when_frames_stop(probe):
    time.sleep(1.5)  # diagnostics.stale_after is 1 s
    assert probe.wait_for(lambda: _status(probe).message.startswith("no frame received for"), timeout=5)
    assert _status(probe).level == bytes([1])
    assert _status(probe).hardware_id == "srdb_enhancer"


def test_deactivate_stops_and_cleanup_releases(probe):
    assert probe.lifecycle.transition("deactivate")
    assert probe.wait_for(lambda: probe.pubs["eo"].get_subscription_count() == 0, timeout=10)
    probe.clear()
    for _ in range(5):
        probe.pubs["eo"].publish(_frame(11))
        time.sleep(0.1)
    time.sleep(0.5)
    assert not probe.messages("eo/deblurred/image_raw")
    assert probe.lifecycle.transition("cleanup")
    assert probe.lifecycle.state() == "unconfigured"
    assert probe.wait_for(lambda: probe.node.count_publishers(BEST_EFFORT_OUTPUT) == 0, timeout=10)
    assert probe.lifecycle.transition("configure") and probe.lifecycle.transition("activate")  # and back up
    assert probe.wait_for(lambda: probe.pubs["eo"].get_subscription_count() > 0, timeout=10)


def test_failed_configure_is_a_failure_transition_not_a_crash(probe, tmp_path):
    log = tmp_path / "bad.log"
    proc = _start("/broken", log, f"weights_path:={tmp_path / 'missing.safetensors'}")
    try:
        lifecycle = Lifecycle(probe.node, "/broken/enhance_node")
        assert lifecycle.wait(60), log.read_text()
        assert not lifecycle.transition("configure")
        assert lifecycle.state() == "unconfigured"
        assert proc.poll() is None
        assert "configure failed" in log.read_text()

        def node_status():  # the node's own status: ERROR with the reason until a configure succeeds
            found = [
                s for a in probe.messages("/diagnostics") for s in a.status if s.name == "/broken/enhance_node: node"
            ]
            return found[-1] if found else None

        assert probe.wait_for(lambda: node_status() is not None, timeout=15)
        assert node_status().level == bytes([2]) and "missing.safetensors" in node_status().message
        assert _values(node_status())["state"] == "unconfigured"
    finally:
        stop_process(proc)
