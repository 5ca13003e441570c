"""Replay a bag into a running node as ``ros2 bag play`` would, and record what the node publishes."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from ..core.contract import DEFAULT_CAMERAS, OUTPUT_NAMES, blur_topic, camera_of, output_topic
from ..core.stamps import cdr_stamp_ns
from .bags import BagContents

OUTPUT_TYPES = {"image_raw": "sensor_msgs/msg/Image", "camera_info": "sensor_msgs/msg/CameraInfo"}
BLUR_TYPE = "geometry_msgs/msg/Vector3Stamped"  # <camera>/blur, the node's blur estimate


TEARDOWN_WAIT_S = 5.0


def stop_spinning(executor, spin: threading.Thread, node: Node, context) -> None:
    """Stop a tool's node spun by ``executor`` in the thread ``spin`` and shut its context down; every wait is
    bounded, so a teardown that blocks cannot hold the report (or a CI job) forever."""
    executor.shutdown(timeout_sec=TEARDOWN_WAIT_S)
    spin.join(timeout=TEARDOWN_WAIT_S)
    node.destroy_node()
    rclpy.shutdown(context=context)


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
    """Raw subscriptions to the outputs of the node's ``cameras`` (and /diagnostics); keeps serialized messages
    with receive times."""

    node: Node
    namespace: str = ""
    cameras: tuple[str, ...] = DEFAULT_CAMERAS
    records: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    answered: set[tuple[str, int]] = field(default_factory=set)  # (camera, input stamp) with an image output
    changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        prefix = self.namespace.rstrip("/") + "/" if self.namespace else "/"
        topics = {
            prefix + output_topic(cam, task, kind): msgtype
            for cam in self.cameras
            for task in OUTPUT_NAMES
            for kind, msgtype in OUTPUT_TYPES.items()
        }
        topics.update({prefix + blur_topic(cam): BLUR_TYPE for cam in self.cameras})
        topics["/diagnostics"] = "diagnostic_msgs/msg/DiagnosticArray"
        for topic, msgtype in topics.items():
            self.node.create_subscription(
                message_class(msgtype), topic, lambda raw, t=topic, m=msgtype: self._store(t, m, raw), qos, raw=True
            )

    def _store(self, topic: str, msgtype: str, raw: bytes) -> None:
        raw = bytes(raw)
        with self.changed:
            self.records.append(Recorded(topic, msgtype, time.time_ns(), raw))
            if msgtype == "sensor_msgs/msg/Image":
                self.answered.add((camera_of(topic), cdr_stamp_ns(raw)))
            self.changed.notify_all()

    def wait_answer(self, camera: str, stamp_ns: int, timeout: float) -> bool:
        """Block until an image output for this input frame has arrived (True) or ``timeout`` passed (False)."""
        with self.changed:
            return self.changed.wait_for(lambda: (camera, stamp_ns) in self.answered, timeout)

    def snapshot(self) -> list[Recorded]:
        with self.lock:
            return list(self.records)

    def count(self, suffix: str) -> int:
        with self.lock:
            return sum(r.topic.endswith(suffix) for r in self.records)


class BagPlayer:
    """Publishes a bag's input topics with their recorded QoS, in log-time order and timing (``rate`` factor)."""

    def __init__(
        self, node: Node, bag: BagContents, topics: list[str], rate: float = 1.0, loops: int = 1, namespace: str = ""
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.node, self.bag, self.rate, self.loops = node, bag, rate, max(1, loops)
        qos = bag.qos
        prefix = namespace.rstrip("/") + "/" if namespace else "/"
        self.topics = topics
        self.remap = {t: prefix + t.lstrip("/") for t in topics}
        self.messages = bag.select(topics)
        if not self.messages:
            raise ValueError(f"{bag.path}: none of the topics {topics} has messages")
        types = {m.topic: m.msgtype for m in self.messages}
        self.publishers = {
            t: node.create_publisher(message_class(types[t]), self.remap[t], rclpy_qos(qos[t])) for t in types
        }

    def wait_for_subscribers(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        images = [
            p for t, p in self.publishers.items() if t.endswith("image_raw") or t.endswith("image_raw/compressed")
        ]
        while time.monotonic() < deadline:
            if all(p.get_subscription_count() > 0 for p in images):
                return True
            time.sleep(0.2)
        return False

    def play(
        self, progress: bool = True, recorder: Recorder | None = None, frame_timeout: float = 30.0
    ) -> list[Published]:
        """Publish every message. With a ``recorder`` (lockstep), each image goes out when the node has answered the
        previous one or ``frame_timeout`` passed, so none is dropped for being too early; otherwise at the bag's
        timing times ``rate`` (real time: a node slower than the bag drops frames, as it would live)."""
        from tqdm import tqdm

        published: list[Published] = []
        waiting: tuple[str, int] | None = None
        total = len(self.messages) * self.loops
        t_first = self.messages[0].timestamp_ns
        duration = self.messages[-1].timestamp_ns - t_first + 1
        start = time.monotonic_ns()
        with tqdm(total=total, desc="replay", unit="msg", disable=not progress, dynamic_ncols=True) as bar:
            for loop in range(self.loops):
                for msg in self.messages:
                    is_image = msg.msgtype.endswith("/Image") or msg.msgtype.endswith("/CompressedImage")
                    if recorder is None:
                        due = start + int(((msg.timestamp_ns - t_first) + loop * duration) / self.rate)
                        delay = (due - time.monotonic_ns()) / 1e9
                        if delay > 0:
                            time.sleep(delay)
                    elif is_image and waiting is not None:
                        recorder.wait_answer(*waiting, frame_timeout)
                    self.publishers[msg.topic].publish(msg.raw)
                    if is_image:
                        stamp = cdr_stamp_ns(msg.raw)
                        published.append(Published(msg.topic, stamp, time.time_ns()))
                        waiting = (camera_of(msg.topic), stamp)
                    bar.update(1)
            if recorder is not None and waiting is not None:
                recorder.wait_answer(*waiting, frame_timeout)
        return published
