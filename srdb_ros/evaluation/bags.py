"""rosbag2 files (MCAP or sqlite3) through ``rosbags``: building evaluation bags from image folders.

Bags carry the message type definitions and offered QoS profiles that ``ros2 bag play`` needs. Inputs are
``/<cam>/image_raw`` (+ ``/<cam>/camera_info``) with sensor-data QoS; each input frame has its ground truth on
``/<cam>/ground_truth`` with the same header stamp.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from ..core.contract import CAMERA_NAME, DOMAINS, SCALE, TRANSPORTS, camera_of, input_topic
from ..core.files import staging_dir
from ..core.image_codec import decode_compressed, decode_image, encode_image
from ..core.imaging import bicubic_resize
from ..core.stamps import header_ns, ns_to_stamp
from ..data.blur import MotionBlurSynthesizer
from ..data.datasets import list_images

LOG = logging.getLogger(__name__)

TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
START_NS = 1_700_000_000 * 10**9  # stamps of generated bags start here
_ZERO = QosTime(0, 0)
_INFINITE = QosTime(2147483647, 4294967295)


def qos(reliable: bool, depth: int) -> Qos:
    return Qos(
        QosHistory.KEEP_LAST,
        depth,
        QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
        QosDurability.VOLATILE,
        _INFINITE,
        _INFINITE,
        QosLiveliness.AUTOMATIC,
        _INFINITE,
        False,
    )


SENSOR_QOS = qos(False, 5)
RELIABLE_QOS = qos(True, 10)


class BagWriter:
    """Write typed messages or raw CDR bytes to a rosbag2 with type definitions and offered QoS."""

    def __init__(self, path: str | Path, storage: str = "mcap") -> None:
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {list(STORAGES)}")
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"{self.path} exists; choose another output or remove it")
        self.writer = Writer(self.path, version=Writer.VERSION_LATEST, storage_plugin=STORAGES[storage])
        self.connections: dict[str, object] = {}

    def __enter__(self) -> BagWriter:
        self.writer.open()
        return self

    def __exit__(self, *exc) -> None:
        self.writer.close()

    def _connection(self, topic: str, msgtype: str, qos_profile: Qos):
        if topic not in self.connections:
            self.connections[topic] = self.writer.add_connection(
                topic, msgtype, typestore=TYPESTORE, offered_qos_profiles=[qos_profile]
            )
        return self.connections[topic]

    def write(self, topic: str, msg, timestamp_ns: int, qos_profile: Qos = RELIABLE_QOS) -> None:
        conn = self._connection(topic, msg.__msgtype__, qos_profile)
        self.writer.write(conn, timestamp_ns, TYPESTORE.serialize_cdr(msg, msg.__msgtype__))

    def write_raw(
        self, topic: str, msgtype: str, data: bytes, timestamp_ns: int, qos_profile: Qos = RELIABLE_QOS
    ) -> None:
        self.writer.write(self._connection(topic, msgtype, qos_profile), timestamp_ns, data)


@dataclass
class BagMessage:
    topic: str
    msgtype: str
    timestamp_ns: int
    raw: bytes

    def decode(self):
        return TYPESTORE.deserialize_cdr(self.raw, self.msgtype)


def read_bag(path: str | Path, topics: list[str] | None = None) -> Iterator[BagMessage]:
    """Messages in log-time order (raw CDR kept, decode on demand)."""
    with Reader(Path(path)) as reader:
        conns = [c for c in reader.connections if topics is None or c.topic in topics]
        for conn, timestamp, raw in reader.messages(connections=conns):
            yield BagMessage(conn.topic, conn.msgtype, timestamp, bytes(raw))


@dataclass
class BagContents:
    """A bag read once: its messages (raw), topic types and offered QoS, and its decoded input and ground-truth
    frames keyed by (kind, camera, stamp); evaluation, replay and report all work from this."""

    path: Path
    messages: list[BagMessage]
    topics: dict[str, str]
    qos: dict[str, Qos]
    frames: dict[tuple[str, str, int], tuple[np.ndarray, str]]

    @classmethod
    def load(cls, path: str | Path) -> BagContents:
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no such bag folder")
        if not (path / "metadata.yaml").is_file():
            raise FileNotFoundError(f"{path / 'metadata.yaml'}: not found (a rosbag2 folder holds it beside its data)")
        with Reader(path) as reader:
            topics = {c.topic: c.msgtype for c in reader.connections}
            qos = {c.topic: _offered_qos(c) for c in reader.connections}
            messages = [BagMessage(c.topic, c.msgtype, t, bytes(raw)) for c, t, raw in reader.messages()]
        frames = {}
        for msg in messages:
            if msg.msgtype == COMPRESSED_IMAGE and msg.topic.endswith("image_raw/compressed"):
                decoded = msg.decode()
                image, kind = decode_compressed(decoded), "input"
            elif msg.msgtype == IMAGE and (msg.topic.endswith("image_raw") or msg.topic.endswith("ground_truth")):
                kind = "input" if msg.topic.endswith("image_raw") else "gt"
                decoded = msg.decode()
                image = decode_image(decoded)
            else:
                continue
            frames[(kind, camera_of(msg.topic), header_ns(decoded.header))] = (image.array, image.color_order)
        return cls(path, messages, topics, qos, frames)

    def domains(self) -> dict[str, str]:
        """Each camera's domain by what its ground truth asks for: ``ir`` (x4 super-resolution) when the ground
        truth is ``SCALE`` times the input, else ``eo`` (deblurring)."""
        found: dict[str, str] = {}
        for (kind, camera, stamp), (image, _) in self.frames.items():
            truth = self.frames.get(("gt", camera, stamp))
            if kind == "input" and camera not in found and truth is not None:
                found[camera] = "ir" if truth[0].shape[0] == SCALE * image.shape[0] else "eo"
        return found

    def input_type_errors(self) -> list[str]:
        """Input topics whose type is not what the node subscribes there (it would never receive them)."""
        errors = []
        for topic, msgtype in sorted(self.topics.items()):
            expected = expected_input_type(topic)
            if expected and msgtype != expected:
                errors.append(f"{topic} has {msgtype}, the node subscribes {expected}")
        return errors

    def select(self, topics: list[str]) -> list[BagMessage]:
        return [m for m in self.messages if m.topic in topics]


def expected_input_type(topic: str) -> str | None:
    """The message type the node subscribes on an input topic of a bag (None: not an input topic)."""
    for suffix, msgtype in (("/image_raw", IMAGE), ("/image_raw/compressed", COMPRESSED_IMAGE)):
        if topic.endswith(suffix):
            return msgtype
    return CAMERA_INFO if topic.endswith("/camera_info") else None


def bag_qos(path: str | Path) -> dict[str, Qos]:
    """The offered QoS recorded for each topic (the first profile; sensor-data QoS if none)."""
    with Reader(Path(path)) as reader:
        return {c.topic: _offered_qos(c) for c in reader.connections}


def _offered_qos(connection) -> Qos:
    profiles = getattr(connection.ext, "offered_qos_profiles", None) or []
    return profiles[0] if profiles and isinstance(profiles[0], Qos) else SENSOR_QOS


def make_header(stamp_ns: int, frame_id: str):
    Time = TYPESTORE.types["builtin_interfaces/msg/Time"]
    Header = TYPESTORE.types["std_msgs/msg/Header"]
    sec, nanosec = ns_to_stamp(stamp_ns)
    return Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame_id)


def image_message(arr: np.ndarray, encoding: str, stamp_ns: int, frame_id: str):
    """A rosbags sensor_msgs/Image from an HxW or HxWx3 array (the shared encoder of ``core.image_codec``)."""
    f = encode_image(arr, encoding)
    Image = TYPESTORE.types[IMAGE]
    return Image(
        header=make_header(stamp_ns, frame_id),
        height=f.height,
        width=f.width,
        encoding=f.encoding,
        is_bigendian=f.is_bigendian,
        step=f.step,
        data=np.frombuffer(f.data, dtype=np.uint8),
    )


def camera_info_message(width: int, height: int, stamp_ns: int, frame_id: str):
    """Pinhole intrinsics with a 60-degree horizontal field of view, principal point at the centre."""
    f = width / (2 * np.tan(np.radians(30)))
    cx, cy = (width - 1) / 2, (height - 1) / 2
    CameraInfo = TYPESTORE.types[CAMERA_INFO]
    RegionOfInterest = TYPESTORE.types["sensor_msgs/msg/RegionOfInterest"]
    return CameraInfo(
        header=make_header(stamp_ns, frame_id),
        height=height,
        width=width,
        distortion_model="plumb_bob",
        d=np.zeros(5),
        k=np.array([f, 0, cx, 0, f, cy, 0, 0, 1.0]),
        r=np.eye(3).ravel(),
        p=np.array([f, 0, cx, 0, 0, f, cy, 0, 0, 0, 1.0, 0]),
        binning_x=0,
        binning_y=0,
        roi=RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
    )


def downscale(arr: np.ndarray, scale: int) -> np.ndarray:
    """Antialiased bicubic downscale of uint8/uint16 frames (same kernel as the training data)."""
    full = float(np.iinfo(arr.dtype).max)
    y = bicubic_resize(arr.astype(np.float32) / full, 1.0 / scale)
    return np.clip(np.rint(y * full), 0, full).astype(arr.dtype)


def _read_raw(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"{path}: cannot be read as an image")
    return img


def _fit(img: np.ndarray, max_side: int, multiple: int) -> np.ndarray:
    """Downscale so the longer side is at most ``max_side`` (0 = keep), then crop to a multiple."""
    h, w = img.shape[:2]
    if max_side and max(h, w) > max_side:
        s = max_side / max(h, w)
        img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        h, w = img.shape[:2]
    return img[: h - h % multiple, : w - w % multiple]


@dataclass(frozen=True)
class BagCamera:
    """A camera of an evaluation bag: its name (topics ``/<name>/...``), its folder of sharp frames and its domain:
    ``eo`` frames are motion-blurred (ground truth: the sharp frame), ``ir`` frames downscaled x4 (ground truth:
    the full-resolution frame)."""

    name: str
    folder: str
    domain: str = "eo"

    @classmethod
    def parse(cls, text: str) -> BagCamera:
        """``NAME=FOLDER`` (an eo camera) or ``NAME:DOMAIN=FOLDER`` (``thermal:ir=/data/flir``)."""
        import re

        head, sep, folder = text.partition("=")
        name, _, domain = head.partition(":")
        if not sep or not folder or not re.fullmatch(CAMERA_NAME, name) or domain not in ("", *DOMAINS):
            raise ValueError(f"camera {text!r}: expected NAME=FOLDER or NAME:eo|ir=FOLDER (lower-case name)")
        return cls(name, folder, domain or "eo")


def make_bag(
    eo_dir=None,
    ir_dir=None,
    output="eval_bag",
    storage: str = "mcap",
    fps: float = 10.0,
    seed: int = 0,
    scale: int = 4,
    max_frames: int = 0,
    eo_max_side: int = 0,
    ir_max_side: int = 0,
    eo_encoding: str = "bgr8",
    synthesizer: MotionBlurSynthesizer | None = None,
    transport: str = "raw",
    cameras: tuple[BagCamera, ...] = (),
) -> dict:
    """EO frames blurred by seeded motion blur, IR frames downscaled x``scale``; ground truth alongside. ``eo_dir``
    and ``ir_dir`` are the cameras ``eo`` and ``ir``; ``cameras`` adds any others, each from its own folder.
    With ``transport="compressed"`` the inputs are lossless PNG CompressedImages on ``<cam>/image_raw/compressed``."""
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {TRANSPORTS}, got {transport!r}")
    default = [BagCamera(n, str(d), n) for n, d in (("eo", eo_dir), ("ir", ir_dir)) if d is not None]
    cameras = (*default, *cameras)
    if not cameras:
        raise ValueError("give at least one camera (--eo, --ir or --camera)")
    names = [c.name for c in cameras]
    if len(set(names)) < len(names):
        raise ValueError(f"camera {max(names, key=names.count)!r} is given twice")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    output = Path(output)
    if output.exists():
        raise FileExistsError(f"{output} exists; choose another output or remove it")
    synth = synthesizer or MotionBlurSynthesizer(seed=seed)
    files = {c: list_images(c.folder)[: max_frames or None] for c in cameras}
    if not any(files.values()):
        raise ValueError(f"no images found in {' or '.join(c.folder for c in cameras)}")
    period = int(1e9 / fps)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_dir(output)  # renamed when complete; killed runs' leftovers are removed
    try:
        _write_bag(
            staging / "bag", storage, files, eo_encoding, synth, (eo_max_side, ir_max_side), period, scale, transport
        )
        os.replace(staging / "bag", output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    counts = {c.name: len(f) for c, f in files.items()}
    return {"path": str(output), "storage": storage, "frames": counts, "fps": fps, "transport": transport}


def compressed_message(arr: np.ndarray, encoding: str, stamp_ns: int, frame_id: str):
    """A rosbags sensor_msgs/CompressedImage holding ``arr`` (in ``encoding``) as a lossless PNG, with
    image_transport's format string."""
    bgr_or_mono = arr[:, :, ::-1] if encoding == "rgb8" else arr
    CompressedImage = TYPESTORE.types[COMPRESSED_IMAGE]
    stored = "bgr8" if arr.ndim == 3 else encoding
    return CompressedImage(
        header=make_header(stamp_ns, frame_id),
        format=f"{encoding}; png compressed {stored}",
        data=np.frombuffer(cv2.imencode(".png", np.ascontiguousarray(bgr_or_mono))[1].tobytes(), dtype=np.uint8),
    )


def _write_bag(path, storage, files, eo_encoding, synth, max_sides, period, scale, transport):
    """Every camera's frame ``i`` at the same stamp: the degraded input, its camera_info and its ground truth."""
    eo_max_side, ir_max_side = max_sides
    message = compressed_message if transport == "compressed" else image_message
    with BagWriter(path, storage) as bag:
        for i in range(max(len(f) for f in files.values())):
            stamp = START_NS + i * period
            for camera, paths in files.items():
                if i >= len(paths):
                    continue
                if camera.domain == "eo":
                    sharp = _sharp_eo(paths[i], eo_max_side, eo_encoding)
                    degraded, truth, encoding = synth.apply(sharp, i), sharp, eo_encoding
                else:
                    truth, encoding = _thermal(paths[i], ir_max_side, scale)
                    degraded = downscale(truth, scale)
                frame_id, h, w = f"{camera.name}_optical", degraded.shape[0], degraded.shape[1]
                topic = input_topic(f"/{camera.name}", transport)
                bag.write(topic, message(degraded, encoding, stamp, frame_id), stamp, SENSOR_QOS)
                info = camera_info_message(w, h, stamp, frame_id)
                bag.write(f"/{camera.name}/camera_info", info, stamp, SENSOR_QOS)
                bag.write(f"/{camera.name}/ground_truth", image_message(truth, encoding, stamp, frame_id), stamp)


def _sharp_eo(path: Path, max_side: int, encoding: str) -> np.ndarray:
    """An EO frame as 8-bit colour in ``encoding`` (bgr8 or rgb8), fitted to ``max_side``."""
    bgr = _fit(_read_raw(path), max_side, 1)
    if bgr.ndim == 2:
        bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
    bgr = bgr[:, :, :3]
    if bgr.dtype != np.uint8:
        raise ValueError(f"{path}: EO frames must be 8-bit")
    return bgr if encoding == "bgr8" else bgr[:, :, ::-1]


def _thermal(path: Path, max_side: int, scale: int) -> tuple[np.ndarray, str]:
    """A thermal ground-truth frame (mono8 or mono16), fitted to ``max_side`` and a multiple of ``scale``."""
    hr = _fit(_read_raw(path), max_side, scale)
    if hr.ndim == 3:
        hr = cv2.cvtColor(hr[:, :, :3], cv2.COLOR_BGR2GRAY)
    if min(hr.shape[:2]) < 2 * scale:
        raise ValueError(f"{path}: {hr.shape[1]}x{hr.shape[0]} is too small to downscale x{scale}")
    return hr, "mono16" if hr.dtype == np.uint16 else "mono8"


@dataclass
class MakeBagOptions:
    output: str
    eo: str | None = None
    ir: str | None = None
    camera: tuple[str, ...] = ()  # NAME=FOLDER or NAME:eo|ir=FOLDER, each another camera
    storage: str = "mcap"
    fps: float = 10.0
    seed: int = 0
    max_frames: int = 0
    eo_max_side: int = 0
    ir_max_side: int = 0
    eo_encoding: str = "bgr8"
    transport: str = "raw"


def make_bag_command(opts: MakeBagOptions) -> int:
    """``srdb make-bag``."""
    info = make_bag(
        opts.eo,
        opts.ir,
        opts.output,
        opts.storage,
        opts.fps,
        opts.seed,
        SCALE,
        opts.max_frames,
        opts.eo_max_side,
        opts.ir_max_side,
        opts.eo_encoding,
        transport=opts.transport,
        cameras=tuple(BagCamera.parse(text) for text in opts.camera),
    )
    frames = ", ".join(f"{n} {count}" for n, count in info["frames"].items())
    print(
        f"wrote {info['path']} ({info['storage']}): frames per camera {frames} (EO motion-blurred, "
        f"{opts.eo_encoding}; IR x4 downscaled), {opts.fps:g} fps, {opts.transport} inputs, ground truth on "
        "<cam>/ground_truth"
    )
    return 0
