"""The enhance node: EO and IR images in, deblurred and x4 super-resolved images out, timing on /diagnostics.

A thin rclpy layer over :class:`srdb_ros.inference.Enhancer`. Subscription callbacks only store the newest
frame per camera (an unprocessed older frame is dropped and counted); one worker thread converts, runs the
backend and publishes, so the node never falls behind its inputs.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from ..core.contract import CAMERAS
from ..inference import AGCConfig, BackendError, Enhancer, Frame, ModelFiles, create_backend
from ..models import WeightFileError
from ..resources import bundled_model
from .conversions import (
    ImageConversionError,
    array_to_image_msg,
    camera_info_problem,
    image_msg_to_array,
    scale_camera_info,
)
from .diagnostics import CameraStats, camera_status, clip_text
from .params import ParameterError, check_overrides, command_line_values, declare_all, usage, validate

LOG_THROTTLE_S = 2.0
LOG_KINDS = 64


@dataclass
class Camera:
    """One camera's topics, newest pending frame and statistics."""

    name: str
    stats: CameraStats
    pub_deblurred: object = None
    pub_sr: object = None
    pub_sr_info: object = None
    camera_info: CameraInfo | None = None
    pending: tuple[Image, float] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, msg: Image) -> bool:
        """Store the newest frame; True if an unprocessed one was replaced (a drop)."""
        with self.lock:
            replaced = self.pending is not None
            self.pending = (msg, time.perf_counter())
        return replaced

    def take(self) -> tuple[Image, float] | None:
        with self.lock:
            item, self.pending = self.pending, None
        return item


class EnhanceNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("enhance_node", **kwargs)
        declare_all(self)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._last_warning: OrderedDict[tuple[str, str], float] = OrderedDict()
        self.enhancer = Enhancer(self._make_backend(), self._agc(), self._p("tile_size"), self._p("tile_overlap"))
        self.backend_name = self.enhancer.backend.describe()
        depth = self._p("qos_depth")
        in_qos = QoSProfile(
            depth=depth, history=qos_profile_sensor_data.history, reliability=qos_profile_sensor_data.reliability
        )
        if self._p("input_qos") == "reliable":
            in_qos.reliability = ReliabilityPolicy.RELIABLE
        out_qos = QoSProfile(depth=depth)
        self.cameras: dict[str, Camera] = {}
        for name in CAMERAS:
            if not self._p(f"{name}.enabled"):
                continue
            cam = Camera(name, CameraStats(window=self._p("diagnostics.window")))
            cam.pub_deblurred = self.create_publisher(Image, f"{name}/deblurred", out_qos)
            cam.pub_sr = self.create_publisher(Image, f"{name}/super_resolved", out_qos)
            cam.pub_sr_info = self.create_publisher(CameraInfo, f"{name}/super_resolved/camera_info", out_qos)
            self.create_subscription(Image, f"{name}/image_raw", lambda m, c=cam: self._on_image(c, m), in_qos)
            self.create_subscription(
                CameraInfo, f"{name}/camera_info", lambda m, c=cam: setattr(c, "camera_info", m), in_qos
            )
            self.cameras[name] = cam
        if not self.cameras:
            self.get_logger().warning("both cameras are disabled (eo.enabled and ir.enabled are false)")
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self._p("diagnostics.period"), self._publish_diagnostics)
        self._warmup()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name="srdb-inference", daemon=True)
        self._worker.start()
        tasks = ", ".join(f"{n}: {self._p(f'{n}.task')}" for n in self.cameras)
        self.get_logger().info(f"ready: backend {self.backend_name}; cameras {tasks or 'none'}")

    # -- parameters ---------------------------------------------------------------------------------
    def _p(self, name: str):
        return self.get_parameter(name).value

    def _on_set_parameters(self, params) -> SetParametersResult:
        changes = {p.name: p.value for p in params}
        reason = validate(changes, self._p)
        if reason is None and hasattr(self, "enhancer"):
            agc_keys = [k for k in changes if k.startswith("agc.")]
            if agc_keys:
                values = {
                    k: changes.get(k, self._p(k))
                    for k in ("agc.mode", "agc.low_percentile", "agc.high_percentile", "agc.fixed_min", "agc.fixed_max")
                }
                self.enhancer.agc = _agc_from(values)
            if "tile_size" in changes:
                self.enhancer.tile_size = changes["tile_size"]
            if "tile_overlap" in changes:
                self.enhancer.tile_overlap = changes["tile_overlap"]
        if reason:
            self.get_logger().warning(f"rejected parameter change: {reason}")
        return SetParametersResult(successful=reason is None, reason=reason or "")

    def _agc(self) -> AGCConfig:
        return _agc_from(
            {
                k: self._p(k)
                for k in ("agc.mode", "agc.low_percentile", "agc.high_percentile", "agc.fixed_min", "agc.fixed_max")
            }
        )

    def _make_backend(self):
        files = ModelFiles(
            weights=self._p("weights_path") or str(bundled_model()),
            onnx=self._p("onnx_path"),
            engine=self._p("engine_path"),
        )
        return create_backend(
            self._p("backend"), files, self._p("device"), self._p("precision"), self._p("force_engine_update")
        )

    def _warmup(self) -> None:
        for name in self.cameras:
            self.enhancer.backend.warmup(self._p(f"{name}.task"))

    # -- data path ----------------------------------------------------------------------------------
    def _on_image(self, cam: Camera, msg: Image) -> None:
        cam.stats.on_receive(cam.put(msg))
        self._wake.set()

    def _work(self) -> None:
        while not self._stop.is_set() and self.context.ok():  # a signal ends the context: stop quietly
            if not self._wake.wait(timeout=0.1):
                continue
            self._wake.clear()
            items = [(cam, item) for cam in self.cameras.values() if (item := cam.take()) is not None]
            if items:
                self._process(items)

    def _process(self, items: list[tuple[Camera, tuple[Image, float]]]) -> None:
        frames: dict[str, list] = {}
        for cam, (msg, t_recv) in items:
            t0 = time.perf_counter()
            try:
                image, order = image_msg_to_array(msg, self._p("max_pixels"), self._p("min_side"))
            except ImageConversionError as exc:
                self._fail(cam, f"bad frame on {cam.name}/image_raw: {exc}")
                continue
            task = self._p(f"{cam.name}.task")
            convert_ms = (time.perf_counter() - t0) * 1e3
            frames.setdefault(task, []).append((cam, msg, t_recv, convert_ms, Frame(image, task, order)))
        for task, group in frames.items():
            chunks = [group] if self._p("batch_cameras") else [[g] for g in group]
            for chunk in chunks:
                try:
                    results = self.enhancer.enhance_batch([g[4] for g in chunk])
                except Exception as exc:  # noqa: BLE001 - a failing frame must not stop the node
                    for cam, *_ in chunk:
                        self._fail(cam, f"inference failed on {cam.name} ({task}): {exc}")
                    continue
                for (cam, msg, t_recv, convert_ms, _), result in zip(chunk, results):
                    self._publish(cam, msg, t_recv, convert_ms, result)

    def _publish(self, cam: Camera, msg: Image, t_recv: float, convert_ms: float, result) -> None:
        t0 = time.perf_counter()
        try:
            if result.deblurred is not None:
                cam.pub_deblurred.publish(array_to_image_msg(result.deblurred, msg.encoding, msg.header))
            if result.super_resolved is not None:
                cam.pub_sr.publish(array_to_image_msg(result.super_resolved, msg.encoding, msg.header))
                if cam.camera_info is not None:
                    scale = self.enhancer.backend.upscale
                    problem = camera_info_problem(cam.camera_info, msg.width, msg.height, scale)
                    if problem is None:
                        info = scale_camera_info(cam.camera_info, scale)
                        info.header = msg.header
                        cam.pub_sr_info.publish(info)
                    else:  # counted and reported, never propagated
                        cam.stats.on_camera_info_mismatch()
                        self._warn_throttled(cam, f"{cam.name}/camera_info not used: {problem}")
        except Exception as exc:  # noqa: BLE001
            if self.context.ok():  # after shutdown began, a failed publish is expected, not an error
                self._fail(cam, f"publishing failed on {cam.name}: {exc}")
            return
        now = time.perf_counter()
        timings = dict(result.timings_ms, convert=convert_ms, publish=(now - t0) * 1e3, total=(now - t_recv) * 1e3)
        cam.stats.on_published(timings)
        n = self._p("log_every_n")
        if n and cam.stats.published % n == 0:
            snap = cam.stats.snapshot()
            self.get_logger().info(
                f"{cam.name}: {snap['published']} frames out, {snap['output_rate_hz']:.1f} Hz, "
                f"total p50 {snap['total_ms'][0]:.1f} ms p95 {snap['total_ms'][1]:.1f} ms, "
                f"dropped {snap['dropped']}, failed {snap['errors']}"
            )

    def _fail(self, cam: Camera, reason: str) -> None:
        """Count a failed frame and log it (throttled)."""
        reason = clip_text(reason, 300)
        cam.stats.on_error(reason)
        self._warn_throttled(cam, reason)

    def _warn_throttled(self, cam: Camera, reason: str) -> None:
        """Log at most once per 2 s for each kind of problem (digits ignored, the kind cut to its first words, at
        most ``LOG_KINDS`` kinds remembered: hostile input cannot grow it)."""
        reason = clip_text(reason, 300)
        kind = (cam.name, re.sub(r"\d+", "#", reason)[:48])
        now = time.monotonic()
        if now - self._last_warning.get(kind, -1e9) >= LOG_THROTTLE_S:
            self._last_warning[kind] = now
            self._last_warning.move_to_end(kind)
            while len(self._last_warning) > LOG_KINDS:
                self._last_warning.popitem(last=False)
            self.get_logger().warning(reason)

    def _publish_diagnostics(self) -> None:
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        for name, cam in self.cameras.items():
            msg.status.append(
                camera_status(
                    name,
                    self.get_fully_qualified_name(),
                    self._p("hardware_id"),
                    cam.stats.snapshot(error_hold=self._p("diagnostics.error_hold")),
                    self.backend_name,
                    self._p(f"{name}.task"),
                    self._p("diagnostics.min_rate"),
                )
            )
        self.diag_pub.publish(msg)

    def destroy_node(self) -> None:
        if hasattr(self, "_stop"):
            self._stop.set()
            self._worker.join(timeout=5.0)
            self.enhancer.backend.close()
        super().destroy_node()


def _agc_from(values: dict) -> AGCConfig:
    return AGCConfig(
        values["agc.mode"],
        values["agc.low_percentile"],
        values["agc.high_percentile"],
        values["agc.fixed_min"],
        values["agc.fixed_max"],
    )


def _one_line(exc: BaseException, limit: int = 500) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``enhance_node`` (``ros2 run srdb_ros enhance_node``)."""
    argv = list(argv if argv is not None else sys.argv)
    own = argv[1 : argv.index("--ros-args")] if "--ros-args" in argv else argv[1:]
    if "-h" in own or "--help" in own:
        print(usage())
        return 0
    try:
        check_overrides(command_line_values(argv))
    except ParameterError as exc:
        print(f"enhance_node: cannot start: {_one_line(exc)}", file=sys.stderr)
        return 2
    rclpy.init(args=argv)
    node = None
    try:
        node = EnhanceNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (BackendError, WeightFileError, OSError, ValueError, RuntimeError) as exc:
        if node is None and not rclpy.ok():  # a signal shut the context down while the node was starting
            return 0
        print(f"enhance_node: cannot start: {_one_line(exc)}", file=sys.stderr)
        return 2
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
