"""The enhance node: camera images in (any number of EO and IR cameras), deblurred and x4 super-resolved images
out, timing on /diagnostics.

A thin rclpy lifecycle node over :class:`srdb_ros.inference.Enhancer`. ``configure`` loads the backend (and
builds or loads engines), ``activate`` subscribes and starts the worker, ``deactivate`` stops both, ``cleanup``
frees the backend. Unless ``managed`` is set, the node configures and activates itself at start.

Subscription callbacks only store the newest frame per camera (an unprocessed older frame is dropped and
counted); one worker thread converts, runs the backend (frames of the same task and size from any cameras in one
call) and publishes, so the node never falls behind its inputs. A camera's frames are converted and inferred
only while its outputs have subscribers. The worker reads one frozen settings snapshot
(:class:`srdb_ros.ros.settings.NodeSettings`) per batch; an accepted parameter change swaps it whole.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import threading
import time
from collections import OrderedDict

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Vector3Stamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from ..core.contract import blur_topic, input_topic, output_tasks, output_topic
from ..core.files import file_digest
from ..inference import BackendError, Enhancer, Frame, create_backend
from ..inference.memory import budget_bytes, max_pixels_for
from ..models import WeightFileError
from ..resources import bundled_model
from .camera import Camera
from .conversions import (
    ImageConversionError,
    array_to_compressed_msg,
    array_to_image_msg,
    camera_info_problem,
    image_msg_to_array,
    scale_camera_info,
)
from .diagnostics import CameraStats, camera_status, clip_text, node_status
from .logging_bridge import route_library_logging
from .params import (
    ParameterError,
    check_overrides,
    check_params_files,
    command_line_values,
    declare_all,
    usage,
    validate,
)
from .settings import CameraSettings, NodeSettings, settings_from

WORKER_JOIN_S = 10.0  # how long stopping waits for the frame in flight before abandoning it
LOG_THROTTLE_S = 2.0
LOG_KINDS = 64
REOPENING = ("enabled", "transport", "task", "compressed_outputs")  # camera settings that rebuild its topics


class EnhanceNode(LifecycleNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("enhance_node", **kwargs)
        self._specs = declare_all(self)
        self.settings: NodeSettings = self._read_settings()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.add_post_set_parameters_callback(self._after_set_parameters)
        self._log_handler = route_library_logging(self.get_logger())
        self._last_warning: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._io_lock = threading.RLock()  # topics are created/destroyed while the worker publishes
        self.enhancer: Enhancer | None = None
        self.backend_name = "not configured"
        self.cameras: dict[str, Camera] = {}
        self.stats = {c.name: CameraStats(window=self.settings.diagnostics.window) for c in self.settings.cameras}
        self._state = "unconfigured"
        self._memory_budget = 0  # bytes one frame may take (set at configure)
        self._active_since = 0.0
        self._start_error: Exception | None = None
        self._configure_error = ""  # why the last configure failed, until one succeeds (node status ERROR)
        self._model = "-"  # the model file and its hash, once configured
        self._worker: threading.Thread | None = None
        self._abandoned: list[threading.Thread] = []  # workers still inside the backend when they were stopped
        self._changing: set[str] = set()  # parameters an accepted set changes the value of (for the post-set hook)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self.settings.diagnostics.period, self._publish_diagnostics)
        if not self.settings.managed:
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                raise self._start_error or RuntimeError("configure failed")
            self.trigger_activate()
        else:
            self.get_logger().info("managed: waiting for the configure transition")

    # -- lifecycle ----------------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        s = self.settings
        try:
            weights = s.weights_path or str(bundled_model())
            backend = create_backend(s.backend, s.model_files(weights), s.device, s.precision, s.force_engine_update)
            self.enhancer = Enhancer(backend, s.processing)
            self.backend_name = backend.describe()
            self._model = _model_description(weights)
            self._memory_budget = budget_bytes(backend.memory_device, s.memory_budget_mb)
            for task in dict.fromkeys(c.task for c in s.enabled_cameras):
                backend.warmup(task)
        except Exception as exc:  # noqa: BLE001 - a failed configure is a FAILURE transition, not a crash
            self._start_error, self._configure_error = exc, _one_line(exc, 300)
            if s.managed:  # an auto-started node ends with this line as its exit message instead
                self.get_logger().error(f"configure failed: {_one_line(exc)}")
            self._free_backend()
            return TransitionCallbackReturn.FAILURE
        self._configure_error = ""
        with self._io_lock:
            for camera in s.enabled_cameras:
                self._open_outputs(camera)
        if not self.cameras:
            self.get_logger().warning(f"every camera is disabled ({', '.join(c.name for c in s.cameras)})")
        if not self._estimates_blur():
            self.get_logger().warning(
                "the model has no blur estimator: no <camera>/blur topics, and min_blur_px passes no frame through"
            )
        self._state = "inactive"
        limits = ", ".join(f"{c.name} ({c.task}) {self._max_pixels(s, c.task) / 1e6:.1f} MP" for c in s.enabled_cameras)
        source = "max_pixels" if s.max_pixels else f"a {self._memory_budget / 1e9:.1f} GB memory budget"
        self.get_logger().info(f"configured: backend {self.backend_name}; frame limit {limits or '-'} ({source})")
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)  # activates the lifecycle publishers
        with self._io_lock:
            for cam in self.cameras.values():
                self._open_inputs(cam)
        self._stop.clear()
        self._worker = threading.Thread(target=self._work, name="srdb-inference", daemon=True)
        self._worker.start()
        self._state, self._active_since = "active", time.monotonic()
        tasks = ", ".join(f"{c.name}: {c.task} ({c.transport})" for c in self.settings.enabled_cameras)
        self.get_logger().info(f"active: backend {self.backend_name}; cameras {tasks or 'none'}")
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        with self._io_lock:
            for cam in self.cameras.values():
                self._close_inputs(cam)
        self._state = "inactive"
        self.get_logger().info("inactive: not processing")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self._state = "unconfigured"
        self.get_logger().info("cleaned up: backend released")
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self._state = "finalized"
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self._state = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        """Stop the worker and drop every topic and the backend (GPU memory is freed)."""
        self._stop_worker()
        with self._io_lock:
            for name in list(self.cameras):
                self._close_camera(name)
        self._free_backend()

    def _free_backend(self) -> None:
        if self.enhancer is not None:
            self.enhancer.close()
        self.enhancer = None
        self.backend_name = "not configured"
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass

    def _stop_worker(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout=WORKER_JOIN_S)
            if self._worker.is_alive():
                self._abandoned.append(self._worker)
        self._worker = None

    def stop_processing(self) -> bool:
        """Stop the inference thread at process exit; False if a frame is still inside the backend (abandoned)."""
        self._stop_worker()
        return not any(worker.is_alive() for worker in self._abandoned)

    # -- topics -------------------------------------------------------------------------------------
    def _out_qos(self) -> QoSProfile:
        return QoSProfile(depth=self.settings.qos_depth)

    def _in_qos(self) -> QoSProfile:
        qos = QoSProfile(
            depth=self.settings.qos_depth,
            history=qos_profile_sensor_data.history,
            reliability=qos_profile_sensor_data.reliability,
        )
        if self.settings.input_qos == "reliable":
            qos.reliability = ReliabilityPolicy.RELIABLE
        return qos

    def _open_outputs(self, camera: CameraSettings) -> Camera:
        name = camera.name
        cam = Camera(name, self.stats[name], camera.transport)
        overrides = QoSOverridingOptions.with_default_policies()
        for task in output_tasks(camera.task):  # only the selected task's outputs are advertised
            cam.images[task] = self.create_lifecycle_publisher(
                Image, output_topic(name, task), self._out_qos(), qos_overriding_options=overrides
            )
            cam.info_pubs[task] = self.create_lifecycle_publisher(
                CameraInfo, output_topic(name, task, "camera_info"), self._out_qos(), qos_overriding_options=overrides
            )
            if camera.compressed_outputs != "none":
                cam.compressed[task] = self.create_lifecycle_publisher(
                    CompressedImage,
                    output_topic(name, task, "image_raw/compressed"),
                    self._out_qos(),
                    qos_overriding_options=overrides,
                )
        if self._estimates_blur():
            cam.blur = self.create_lifecycle_publisher(
                Vector3Stamped, blur_topic(name), self._out_qos(), qos_overriding_options=overrides
            )
        self.cameras[name] = cam
        return cam

    def _estimates_blur(self) -> bool:
        """Whether the loaded model has the blur estimator (``<cam>/blur``, ``min_blur_px``)."""
        backend = self.enhancer.backend if self.enhancer is not None else None
        return backend is not None and backend.estimates_blur

    def _open_inputs(self, cam: Camera) -> None:
        overrides = QoSOverridingOptions.with_default_policies()
        compressed = cam.transport == "compressed"
        cam.inputs = [
            self.create_subscription(
                CompressedImage if compressed else Image,
                input_topic(cam.name, "compressed" if compressed else "raw"),
                lambda m, c=cam: self._on_image(c, m),
                self._in_qos(),
                qos_overriding_options=overrides,
            ),
            self.create_subscription(
                CameraInfo,
                f"{cam.name}/camera_info",
                lambda m, c=cam: c.put_info(m),
                self._in_qos(),
                qos_overriding_options=overrides,
            ),
        ]

    def _close_inputs(self, cam: Camera) -> None:
        for sub in cam.inputs:
            self.destroy_subscription(sub)
        cam.inputs = []
        if cam.take() is not None:
            cam.stats.on_dropped()

    def _close_camera(self, name: str) -> None:
        cam = self.cameras.pop(name)
        self._close_inputs(cam)
        for pub in cam.publishers():
            self.destroy_lifecycle_publisher(pub)

    def _reopen_camera(self, camera: CameraSettings) -> None:
        """Apply a runtime change of ``<cam>.enabled``, ``<cam>.transport`` or ``<cam>.task`` (its outputs) in the
        current state."""
        name = camera.name
        with self._io_lock:
            if name in self.cameras:
                self._close_camera(name)
            if self._state in ("inactive", "active") and camera.enabled:
                cam = self._open_outputs(camera)
                if self._state == "active":
                    for pub in cam.publishers():
                        pub.on_activate(None)
                    self._open_inputs(cam)
        state = f"enabled ({camera.task}, {camera.transport})" if name in self.cameras else "disabled"
        self.get_logger().info(f"{name}: {state}")

    # -- parameters ---------------------------------------------------------------------------------
    def _read_settings(self) -> NodeSettings:
        """A settings snapshot of every parameter's current value."""
        return settings_from({p.name: p.value for p in self.get_parameters(list(self._specs))}, self._specs)

    def _on_set_parameters(self, params) -> SetParametersResult:
        changes = {p.name: p.value for p in params}
        current = {p.name: p.value for p in self.get_parameters([n for n in changes if n in self._specs])}
        reason = validate(changes, lambda name: self.get_parameter(name).value, self._specs)
        if reason:
            self.get_logger().warning(f"rejected parameter change: {reason}")
        else:  # what really changes value (setting a parameter to its current value changes nothing)
            self._changing = {name for name, value in changes.items() if name not in current or value != current[name]}
        return SetParametersResult(successful=reason is None, reason=reason or "")

    def _after_set_parameters(self, params) -> None:
        changed, self._changing = self._changing & {p.name for p in params}, set()
        self.settings = settings = self._read_settings()  # swapped whole: the worker reads one snapshot per batch
        if self.enhancer is not None:
            self.enhancer.options = settings.processing
        for camera in settings.cameras:
            if {f"{camera.name}.{leaf}" for leaf in REOPENING} & changed:
                self._reopen_camera(camera)

    def _max_pixels(self, settings: NodeSettings, task: str) -> int:
        """The frame-size limit of a task: ``max_pixels``, or what the task fits in the memory budget."""
        if settings.max_pixels:
            return settings.max_pixels
        device = self.enhancer.backend.memory_device if self.enhancer is not None else "cpu"
        return max(1, max_pixels_for(task, device, self._memory_budget, settings.tile_size))

    # -- data path ----------------------------------------------------------------------------------
    def _on_image(self, cam: Camera, msg) -> None:
        cam.stats.on_receive(cam.put(msg), self._stamp_age(msg.header.stamp))
        self._wake.set()

    def _stamp_age(self, stamp) -> float:
        """Seconds from the header stamp to now by the node's clock (NaN for a stamp that is no time)."""
        clock = self.get_clock()
        try:
            return (clock.now() - Time.from_msg(stamp, clock_type=clock.clock_type)).nanoseconds / 1e9
        except (ValueError, OverflowError):
            return float("nan")

    def _work(self) -> None:
        while not self._stop.is_set() and self.context.ok():  # a signal ends the context: stop quietly
            if not self._wake.wait(timeout=0.1):
                continue
            self._wake.clear()
            items = [(cam, item) for cam in list(self.cameras.values()) if (item := cam.take()) is not None]
            if not items:
                continue
            try:
                self._process(items)
            except Exception as exc:  # noqa: BLE001 - the worker must outlive any one bad batch
                for cam, _ in items:
                    self._fail(cam, f"processing failed on {cam.name}: {exc}")

    def _process(self, items: list[tuple[Camera, tuple[object, float]]]) -> None:
        settings = self.settings  # one snapshot for the whole batch
        frames: dict[str, list] = {}
        for cam, (msg, t_recv) in items:
            camera = settings.camera(cam.name)
            if cam.subscribers(camera.task) == 0:  # lazy: nobody listens, so no conversion and no inference
                cam.stats.on_idle()
                continue
            t0 = time.perf_counter()
            try:
                decoded = image_msg_to_array(msg, self._max_pixels(settings, camera.task), settings.min_side)
            except ImageConversionError as exc:
                transport = "compressed" if hasattr(msg, "format") else "raw"
                self._fail(cam, f"bad frame on {input_topic(cam.name, transport)}: {exc}")
                continue
            convert_ms = (time.perf_counter() - t0) * 1e3
            frame = Frame(decoded.array, camera.task, decoded.color_order, decoded.radiometric, camera.min_blur_px)
            frames.setdefault(camera.task, []).append((cam, msg, t_recv, convert_ms, frame, decoded.encoding))
        enhancer = self.enhancer
        if enhancer is None:  # cleaned up meanwhile
            for group in frames.values():
                for cam, *_ in group:
                    cam.stats.on_dropped()
            return
        for task, group in frames.items():
            chunks = [group] if settings.batch_cameras else [[g] for g in group]
            for chunk in chunks:
                try:
                    results = enhancer.enhance_batch([g[4] for g in chunk])
                except Exception as exc:  # noqa: BLE001 - a failing frame must not stop the node
                    for cam, *_ in chunk:
                        self._fail(cam, f"inference failed on {cam.name} ({task}): {exc}")
                    continue
                for (cam, msg, t_recv, convert_ms, frame, encoding), result in zip(chunk, results):
                    timing = (t_recv, convert_ms, result.batch)
                    self._publish(settings, cam, msg, frame, encoding, result, timing, enhancer.backend.upscale)

    def _publish(self, settings: NodeSettings, cam, msg, frame, encoding, result, timing, upscale: int) -> None:
        """Publish one frame's outputs; ``timing``: (receive time, conversion ms, frames in its backend call)."""
        t_recv, convert_ms, batch = timing
        t0 = time.perf_counter()
        h, w = frame.image.shape[:2]
        info = cam.info_for(msg.header.stamp, settings.camera_info_tolerance)
        if info is None and cam.has_infos:  # the camera publishes camera_info, but none of this frame's stamp
            cam.stats.on_info_unmatched()
        problem = None if info is None else camera_info_problem(info, w, h, upscale)
        if problem is not None:  # counted and reported, never propagated
            cam.stats.on_camera_info_mismatch()
            self._warn_throttled(cam, f"{cam.name}/camera_info not used: {problem}")
        try:
            with self._io_lock:
                if self.cameras.get(cam.name) is not cam:
                    cam.stats.on_dropped()  # the camera was disabled or reconfigured while this frame ran
                    return
                for task in output_tasks(frame.task):
                    image = result.deblurred if task == "deblur" else result.super_resolved
                    self._publish_compressed(settings, cam, task, image, encoding, msg.header)
                    if task == "deblur" and result.passed_sharp and isinstance(msg, Image):
                        cam.images[task].publish(msg)  # a sharp frame goes out as it came, byte for byte
                        continue
                    cam.images[task].publish(array_to_image_msg(image, encoding, msg.header))
                    if info is not None and problem is None:
                        out_info = scale_camera_info(info, upscale if task == "sr" else 1)
                        out_info.header = msg.header
                        cam.info_pubs[task].publish(out_info)
                if result.blur is not None and cam.blur_subscribers():
                    estimate = Vector3Stamped(header=msg.header)
                    estimate.vector.x, estimate.vector.y, estimate.vector.z = result.blur
                    cam.blur.publish(estimate)
        except Exception as exc:  # noqa: BLE001
            if self.context.ok():  # after shutdown began, a failed publish is expected, not an error
                self._fail(cam, f"publishing failed on {cam.name}: {exc}")
            return
        now = time.perf_counter()
        timings = dict(result.timings_ms, convert=convert_ms, publish=(now - t0) * 1e3, total=(now - t_recv) * 1e3)
        cam.stats.on_published(timings, None if result.blur is None else result.blur[2], result.passed_sharp, batch)
        n = settings.log_every_n
        if n and cam.stats.published % n == 0:
            snap = cam.stats.snapshot()
            self.get_logger().info(
                f"{cam.name}: {snap['published']} frames out, {snap['output_rate_hz']:.1f} Hz, "
                f"total p50 {snap['total_ms'][0]:.1f} ms p95 {snap['total_ms'][1]:.1f} ms, "
                f"dropped {snap['dropped']}, failed {snap['errors']}"
            )

    def _publish_compressed(self, settings: NodeSettings, cam: Camera, task: str, image, encoding, header) -> None:
        """The output's ``image_raw/compressed`` message, encoded only while someone subscribes to it."""
        pub = cam.compressed.get(task)
        if pub is None or pub.get_subscription_count() == 0:
            return
        fmt, quality = settings.camera(cam.name).compressed_outputs, settings.compressed
        try:
            pub.publish(array_to_compressed_msg(image, encoding, fmt, quality.jpeg_quality, quality.png_level, header))
        except ImageConversionError as exc:  # a 32FC1 output: the raw image still goes out
            self._warn_throttled(cam, f"{cam.name}: no compressed output: {exc}")

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
        s, d = self.settings, self.settings.diagnostics
        node_name = self.get_fully_qualified_name()
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status.append(
            node_status(
                node_name, s.hardware_id, self._state, self.backend_name, s.device, self._model, self._configure_error
            )
        )
        for camera in s.enabled_cameras:
            cam = self.cameras.get(camera.name)
            msg.status.append(
                camera_status(
                    camera.name,
                    node_name,
                    s.hardware_id,
                    self.stats[camera.name].snapshot(error_hold=d.error_hold),
                    self.backend_name,
                    camera.task,
                    state=self._state,
                    min_rate=d.min_rate,
                    stale_after=d.stale_after,
                    max_stamp_age=d.max_stamp_age,
                    active_for=time.monotonic() - self._active_since,
                    subscribers=cam.subscribers(camera.task) if cam is not None else 0,
                    domain=camera.domain,
                )
            )
        self.diag_pub.publish(msg)

    def destroy_node(self) -> None:
        self._release()
        super().destroy_node()


def _model_description(path: str) -> str:
    """``<file> (sha256 <first 16 hex digits>)`` of the model file, for the node status."""
    try:
        return f"{path} (sha256 {file_digest(path)[:16]})"
    except OSError:
        return path


def _one_line(exc: BaseException, limit: int = 500) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _record_signals(received: list[int]) -> dict:
    """Have the Python SIGINT/SIGTERM handlers also note each signal in ``received`` (before ``rclpy.init``, whose
    handlers call them); returns the handlers replaced. Handlers that are not Python functions are left alone."""
    replaced = {}
    if threading.current_thread() is not threading.main_thread():
        return replaced
    for signum in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(signum)
        if callable(handler):

            def record(sig, frame, handler=handler) -> None:
                received.append(sig)
                handler(sig, frame)

            replaced[signum] = signal.signal(signum, record)
    return replaced


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``enhance_node`` (``ros2 run srdb_ros enhance_node``)."""
    argv = list(argv if argv is not None else sys.argv)
    own = argv[1 : argv.index("--ros-args")] if "--ros-args" in argv else argv[1:]
    if "-h" in own or "--help" in own:
        print(usage())
        return 0
    try:
        check_params_files(argv)
        check_overrides(command_line_values(argv))
    except ParameterError as exc:
        print(f"enhance_node: cannot start: {_one_line(exc)}", file=sys.stderr)
        return 2
    received: list[int] = []
    replaced = _record_signals(received)
    rclpy.init(args=argv)
    node = None
    code = 0
    try:
        node = EnhanceNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (BackendError, WeightFileError, OSError, ValueError, RuntimeError) as exc:
        # a signal ends the node quietly, also where library code turned its exception into another one (PyTorch's
        # C++ did, loading weights) and before rclpy, on another thread, has shut the context down
        if not received and (node is not None or rclpy.ok()):
            print(f"enhance_node: cannot start: {_one_line(exc)}", file=sys.stderr)
            code = 2
    finally:
        for signum, handler in replaced.items():
            signal.signal(signum, handler)
        finished = node is None or node.stop_processing()
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
        if not finished:
            # the inference thread is still inside PyTorch / ONNX Runtime with the frame in flight: finalising the
            # interpreter under it aborts the process ("terminate called without an active exception"), so the
            # frame is abandoned and the process ends here, its output flushed
            print(
                f"enhance_node: a frame still inside the backend after {WORKER_JOIN_S:g} s was abandoned",
                file=sys.stderr,
            )
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
