"""Replay a bag into a running node as ``ros2 bag play`` would, and record what the node publishes."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from .bags import TYPESTORE, BagMessage, bag_qos, read_bag

CAMERAS = ("eo", "ir")
OUTPUT_SUFFIXES = {
    "deblurred": "sensor_msgs/msg/Image",
    "super_resolved": "sensor_msgs/msg/Image",
    "super_resolved/camera_info": "sensor_msgs/msg/CameraInfo",
}


def rclpy_qos(q) -> QoSProfile:
    """A rosbags Qos (from a bag's metadata) as an rclpy QoSProfile."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_ALL if q.history.name == "KEEP_ALL" else HistoryPolicy.KEEP_LAST,
        depth=max(1, int(q.depth)),
        reliability=ReliabilityPolicy.RELIABLE if q.reliability.name == "RELIABLE" else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL
        if q.durability.name == "TRANSIENT_LOCAL"
        else DurabilityPolicy.VOLATILE,
    )


def message_class(msgtype: str):
    """The rclpy message class of a ROS type name such as ``sensor_msgs/msg/Image``."""
    import importlib

    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


@dataclass
class Published:
    topic: str
    stamp_ns: int  # header stamp
    wall_ns: int  # when it was published here


@dataclass
class Recorded:
    topic: str
    msgtype: str
    wall_ns: int
    raw: bytes


@dataclass
class Recorder:
    """Raw subscriptions to the node's outputs (and /diagnostics); keeps serialized messages with receive times."""

    node: Node
    namespace: str = ""
    records: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        prefix = self.namespace.rstrip("/") + "/" if self.namespace else "/"
        topics = {f"{prefix}{cam}/{suffix}": t for cam in CAMERAS for suffix, t in OUTPUT_SUFFIXES.items()}
        topics["/diagnostics"] = "diagnostic_msgs/msg/DiagnosticArray"
        for topic, msgtype in topics.items():
            self.node.create_subscription(
                message_class(msgtype), topic, lambda raw, t=topic, m=msgtype: self._store(t, m, raw), qos, raw=True
            )

    def _store(self, topic: str, msgtype: str, raw: bytes) -> None:
        with self.lock:
            self.records.append(Recorded(topic, msgtype, time.time_ns(), bytes(raw)))

    def snapshot(self) -> list[Recorded]:
        with self.lock:
            return list(self.records)

    def count(self, suffix: str) -> int:
        with self.lock:
            return sum(r.topic.endswith(suffix) for r in self.records)


class BagPlayer:
    """Publishes a bag's input topics with their recorded QoS, in log-time order and timing (``rate`` factor)."""

    def __init__(
        self, node: Node, bag: str | Path, topics: list[str], rate: float = 1.0, loops: int = 1, namespace: str = ""
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.node, self.bag, self.rate, self.loops = node, Path(bag), rate, max(1, loops)
        qos = bag_qos(bag)
        prefix = namespace.rstrip("/") + "/" if namespace else "/"
        self.topics = topics
        self.remap = {t: prefix + t.lstrip("/") for t in topics}
        self.messages = list(read_bag(bag, topics))
        if not self.messages:
            raise ValueError(f"{bag}: none of the topics {topics} has messages")
        types = {m.topic: m.msgtype for m in self.messages}
        self.publishers = {
            t: node.create_publisher(message_class(types[t]), self.remap[t], rclpy_qos(qos[t])) for t in types
        }

    def wait_for_subscribers(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        images = [p for t, p in self.publishers.items() if t.endswith("image_raw")]
        while time.monotonic() < deadline:
            if all(p.get_subscription_count() > 0 for p in images):
                return True
            time.sleep(0.2)
        return False

    def play(self, progress: bool = True) -> list[Published]:
        from tqdm import tqdm

        published: list[Published] = []
        total = len(self.messages) * self.loops
        t_first = self.messages[0].timestamp_ns
        duration = self.messages[-1].timestamp_ns - t_first + 1
        start = time.monotonic_ns()
        with tqdm(total=total, desc="replay", unit="msg", disable=not progress, dynamic_ncols=True) as bar:
            for loop in range(self.loops):
                for msg in self.messages:
                    due = start + int(((msg.timestamp_ns - t_first) + loop * duration) / self.rate)
                    delay = (due - time.monotonic_ns()) / 1e9
                    if delay > 0:
                        time.sleep(delay)
                    self.publishers[msg.topic].publish(msg.raw)
                    if msg.msgtype.endswith("/Image"):
                        published.append(Published(msg.topic, header_stamp_ns(msg), time.time_ns()))
                    bar.update(1)
        return published


def header_stamp_ns(msg: BagMessage | Recorded) -> int:
    decoded = TYPESTORE.deserialize_cdr(msg.raw, msg.msgtype)
    return decoded.header.stamp.sec * 10**9 + decoded.header.stamp.nanosec
