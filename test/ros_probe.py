"""A test-side rclpy node that publishes frames and collects what the enhance node publishes."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.srv import SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter as RclpyParameter
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from srdb_ros.evaluation.replay import stop_spinning

OUTPUTS = {
    f"{cam}/{output}/{kind}": typ
    for cam in ("eo", "ir")
    for output in ("deblurred", "super_resolved")
    for kind, typ in (("image_raw", Image), ("camera_info", CameraInfo))
}


def start_test_node(log, *params: str, namespace: str = ""):
    """The enhance node in its own process on the CPU PyTorch backend, with ``NAME:=VALUE`` parameters."""
    from srdb_ros.ros.launcher import start_node

    args = ["-r", f"__ns:={namespace}"] if namespace else []
    for param in ("backend:=torch", "device:=cpu", *params):
        args += ["-p", param]
    return start_node(ros_args=args, log_path=log)


def stop_process(proc) -> None:
    """End a node process started by a test: SIGTERM, then SIGKILL after 15 s (never left behind)."""
    import subprocess

    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def exit_code(proc, timeout: float = 90) -> int:
    """Wait for a node process to end by itself and return its exit code; killed if it has not after ``timeout``
    s (never left behind)."""
    try:
        return proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class RosProbe:
    """Publishes to a node's inputs under ``namespace`` and records its outputs (``outputs=False``: subscribes to
    /diagnostics only, so the node has no output subscribers). It owns the test process's default ROS context
    from its start to ``close()``: one probe at a time."""

    def __init__(self, name: str = "srdb_test_probe", namespace: str = "", outputs: bool = True) -> None:
        if not rclpy.ok():
            rclpy.init()
        self.node = rclpy.create_node(name, namespace=namespace or None)
        self.received: dict[str, list] = defaultdict(list)
        self.lock = threading.Lock()
        for topic, typ in (OUTPUTS if outputs else {}).items():
            self.subscribe(topic, typ)
        self.subscribe("/diagnostics", DiagnosticArray)
        self.pubs = {}
        for cam in ("eo", "ir"):
            self.pubs[cam] = self.node.create_publisher(Image, f"{cam}/image_raw", qos_profile_sensor_data)
            self.pubs[f"{cam}_info"] = self.node.create_publisher(
                CameraInfo, f"{cam}/camera_info", qos_profile_sensor_data
            )
            self.pubs[f"{cam}_compressed"] = self.node.create_publisher(
                CompressedImage, f"{cam}/image_raw/compressed", qos_profile_sensor_data
            )
        self.param_client = self.node.create_client(SetParameters, f"{namespace}/enhance_node/set_parameters")
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def subscribe(self, topic: str, typ, qos=None):
        """Record ``topic`` (relative to the namespace) under its name."""
        return self.node.create_subscription(
            typ, topic, lambda m, t=topic: self._store(t, m), qos or QoSProfile(depth=50)
        )

    def _store(self, topic: str, msg) -> None:
        with self.lock:
            self.received[topic].append(msg)

    def clear(self) -> None:
        with self.lock:
            self.received.clear()

    def messages(self, topic: str) -> list:
        with self.lock:
            return list(self.received[topic])

    def wait_for(self, predicate, timeout: float = 30.0, republish=None, period: float = 0.3) -> bool:
        """Wait until ``predicate()`` holds, calling ``republish()`` every ``period`` s (best-effort inputs)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            if republish is not None:
                republish()
            time.sleep(period)
        return predicate()

    def wait_for_node(self, timeout: float = 60.0) -> bool:
        """True once the enhance node's subscriptions are matched."""
        return self.wait_for(
            lambda: self.pubs["eo"].get_subscription_count() > 0 and self.param_client.service_is_ready(), timeout
        )

    def set_parameter(self, name: str, value):
        param = RclpyParameter(name, value=value).to_parameter_msg()
        future = self.param_client.call_async(SetParameters.Request(parameters=[param]))
        deadline = time.monotonic() + 10
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        return future.result().results[0]

    def close(self) -> None:
        """Stop spinning, destroy the node and shut the context down, every wait bounded (as the tools do)."""
        stop_spinning(self.executor, self._thread, self.node, context=None)
