"""A test-side rclpy node that publishes frames and collects what the enhance node publishes."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

OUTPUTS = {
    "eo/deblurred": Image,
    "eo/super_resolved": Image,
    "eo/super_resolved/camera_info": CameraInfo,
    "ir/deblurred": Image,
    "ir/super_resolved": Image,
    "ir/super_resolved/camera_info": CameraInfo,
    "/diagnostics": DiagnosticArray,
}


class RosProbe:
    def __init__(self, name: str = "srdb_test_probe") -> None:
        if not rclpy.ok():
            rclpy.init()
        self.node = rclpy.create_node(name)
        self.received: dict[str, list] = defaultdict(list)
        self.lock = threading.Lock()
        for topic, typ in OUTPUTS.items():
            self.node.create_subscription(typ, topic, lambda m, t=topic: self._store(t, m), QoSProfile(depth=50))
        self.pubs = {
            "eo": self.node.create_publisher(Image, "eo/image_raw", qos_profile_sensor_data),
            "ir": self.node.create_publisher(Image, "ir/image_raw", qos_profile_sensor_data),
            "eo_info": self.node.create_publisher(CameraInfo, "eo/camera_info", qos_profile_sensor_data),
            "ir_info": self.node.create_publisher(CameraInfo, "ir/camera_info", qos_profile_sensor_data),
        }
        self.param_client = self.node.create_client(SetParameters, "/enhance_node/set_parameters")
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

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

    def set_parameter(self, name: str, value: str):
        param = Parameter(name=name, value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value))
        future = self.param_client.call_async(SetParameters.Request(parameters=[param]))
        deadline = time.monotonic() + 10
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        return future.result().results[0]

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
