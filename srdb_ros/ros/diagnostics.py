"""Per-camera timing statistics and their /diagnostics status, named after diagnostic_updater's conventions."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

STAGES = ("convert", "preprocess", "infer", "postprocess", "publish", "total")
OK, WARN, ERROR = 0, 1, 2
TEXT_LIMIT = 200  # characters of any text put on /diagnostics (a hostile encoding name can be megabytes)


def clip_text(text: str, limit: int = TEXT_LIMIT) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class CameraStats:
    """Counters and a sliding window of stage latencies for one camera (thread safe)."""

    window: int = 100
    received: int = 0
    published: int = 0
    dropped: int = 0
    errors: int = 0
    last_error: str = ""
    last_error_at: float = -1e18
    camera_info_mismatches: int = 0
    last_mismatch_at: float = -1e18
    idle: int = 0  # frames received while no one subscribed to the outputs (not converted, not inferred)
    passed_sharp: int = 0  # frames below min_blur_px, published unchanged on the deblurred topic
    info_unmatched: int = 0  # frames published without camera_info: none of their stamp arrived
    last_receive_at: float | None = None
    stamp_age_s: float = float("nan")  # of the newest frame
    _lat: dict[str, deque] = field(default_factory=dict)
    _blur: deque = field(init=False, repr=False)  # recent blur estimates (px), as many as ``window``
    _batch: deque = field(init=False, repr=False)  # frames in the backend call of each recent frame
    _in_times: deque = field(default_factory=lambda: deque(maxlen=1000))
    _out_times: deque = field(default_factory=lambda: deque(maxlen=1000))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._blur = deque(maxlen=self.window)
        self._batch = deque(maxlen=self.window)

    def on_receive(self, replaced_pending: bool, stamp_age_s: float = float("nan")) -> None:
        with self._lock:
            self.received += 1
            self.dropped += int(replaced_pending)
            self.last_receive_at = time.monotonic()
            self.stamp_age_s = stamp_age_s
            self._in_times.append(self.last_receive_at)

    def on_dropped(self) -> None:
        """A received frame that will not be processed (its camera was disabled or reconfigured meanwhile)."""
        with self._lock:
            self.dropped += 1

    def on_idle(self) -> None:
        with self._lock:
            self.idle += 1

    def on_published(
        self, timings_ms: dict[str, float], blur_px: float | None = None, passed: bool = False, batch: int = 1
    ) -> None:
        """A published frame: its stage timings, its blur estimate (when the model has one), whether it was
        passed through as sharp and how many frames (of any cameras) shared its backend call."""
        with self._lock:
            self.published += 1
            self._batch.append(batch)
            self.passed_sharp += int(passed)
            if blur_px is not None:
                self._blur.append(blur_px)
            self._out_times.append(time.monotonic())
            for stage in STAGES:
                if stage in timings_ms:
                    self._lat.setdefault(stage, deque(maxlen=self.window)).append(timings_ms[stage])

    def on_info_unmatched(self) -> None:
        with self._lock:
            self.info_unmatched += 1

    def on_camera_info_mismatch(self) -> None:
        with self._lock:
            self.camera_info_mismatches += 1
            self.last_mismatch_at = time.monotonic()

    def on_error(self, reason: str) -> None:
        with self._lock:
            self.errors += 1
            self.last_error = clip_text(reason)
            self.last_error_at = time.monotonic()

    @staticmethod
    def _rate(times: deque, horizon: float, now: float) -> float:
        """Events per second over the last ``horizon`` seconds; when the bounded history does not reach back that
        far (a fast stream), over the span it does cover, so the estimate never saturates."""
        recent = [t for t in times if now - t <= horizon]
        if len(recent) == times.maxlen and now > recent[0]:
            return (len(recent) - 1) / (now - recent[0])
        return len(recent) / horizon if recent else 0.0

    def snapshot(self, horizon: float = 5.0, error_hold: float = 5.0) -> dict:
        """Rates over the last ``horizon`` seconds, latency percentiles over the window, and counters."""
        now = time.monotonic()
        with self._lock:
            snap = {
                "received": self.received,
                "published": self.published,
                "dropped": self.dropped,
                "errors": self.errors,
                "error_active": now - self.last_error_at <= error_hold,
                "camera_info_mismatches": self.camera_info_mismatches,
                "mismatch_active": now - self.last_mismatch_at <= error_hold,
                "last_error": self.last_error,
                "idle": self.idle,
                "passed_sharp": self.passed_sharp,
                "info_unmatched": self.info_unmatched,
                "since_last_frame_s": None if self.last_receive_at is None else now - self.last_receive_at,
                "stamp_age_s": self.stamp_age_s,
                "input_rate_hz": self._rate(self._in_times, horizon, now),
                "output_rate_hz": self._rate(self._out_times, horizon, now),
            }
            if self._batch:
                snap["batch_size"] = (float(np.percentile(self._batch, 50)), max(self._batch))
            if self._blur:
                snap["blur_px"] = (float(np.percentile(self._blur, 50)), float(np.percentile(self._blur, 95)))
            for stage, values in self._lat.items():
                arr = np.asarray(values)
                snap[f"{stage}_ms"] = (float(np.percentile(arr, 50)), float(np.percentile(arr, 95)), float(arr.max()))
        return snap


def camera_status(
    name: str,
    node_name: str,
    hardware_id: str,
    snap: dict,
    backend: str,
    task: str,
    state: str = "active",
    min_rate: float = 0.0,
    stale_after: float = 0.0,
    max_stamp_age: float = 0.0,
    active_for: float = 0.0,
    subscribers: int = 1,
    domain: str = "",
):
    """A diagnostic_msgs/DiagnosticStatus for one camera, with level and message from its snapshot, the node's
    lifecycle ``state`` and the camera's output ``subscribers``."""
    level, message = OK, "ok"
    since = snap["since_last_frame_s"]
    quiet_for = active_for if since is None else min(since, active_for)
    if state != "active":
        message = f"{state}: not processing"
    elif snap["error_active"]:
        level, message = ERROR, clip_text(f"{snap['errors']} frame(s) failed so far; last: {snap['last_error']}")
    elif stale_after > 0 and quiet_for > stale_after:
        level, message = WARN, f"no frame received for {quiet_for:.1f} s (diagnostics.stale_after {stale_after:g} s)"
    elif max_stamp_age > 0 and not snap["stamp_age_s"] <= max_stamp_age:
        level, message = WARN, f"input stamps are {snap['stamp_age_s']:.2f} s old (max_stamp_age {max_stamp_age:g} s)"
    elif snap["mismatch_active"]:
        level, message = WARN, f"{snap['camera_info_mismatches']} camera_info message(s) did not match the image"
    elif subscribers == 0:
        message = "idle: no subscribers"
    elif min_rate > 0 and snap["input_rate_hz"] > 0 and snap["output_rate_hz"] < min_rate:
        level, message = WARN, f"output rate {snap['output_rate_hz']:.1f} Hz below minimum {min_rate:.1f} Hz"
    elif snap["received"] == 0:
        message = "no frames received yet"
    values = [
        ("state", state),
        ("backend", backend),
        *([("domain", domain)] if domain else []),
        ("task", task),
        ("output subscribers", str(subscribers)),
        ("input rate (Hz)", f"{snap['input_rate_hz']:.2f}"),
        ("output rate (Hz)", f"{snap['output_rate_hz']:.2f}"),
        ("frames received", str(snap["received"])),
        ("frames published", str(snap["published"])),
        ("frames dropped", str(snap["dropped"])),
        ("frames failed", str(snap["errors"])),
        ("frames idle (no subscribers)", str(snap["idle"])),
        ("input stamp age (s)", f"{snap['stamp_age_s']:.3f}"),
        ("camera_info mismatches", str(snap["camera_info_mismatches"])),
        ("frames passed sharp", str(snap["passed_sharp"])),
        ("camera_info unmatched", str(snap["info_unmatched"])),
    ]
    if "batch_size" in snap:
        values += [("batch size p50", f"{snap['batch_size'][0]:g}"), ("batch size max", str(snap["batch_size"][1]))]
    if "blur_px" in snap:
        values += [("blur p50 (px)", f"{snap['blur_px'][0]:.2f}"), ("blur p95 (px)", f"{snap['blur_px'][1]:.2f}")]
    for stage in STAGES:
        if f"{stage}_ms" in snap:
            p50, p95, mx = snap[f"{stage}_ms"]
            values += [
                (f"{stage} p50 (ms)", f"{p50:.2f}"),
                (f"{stage} p95 (ms)", f"{p95:.2f}"),
                (f"{stage} max (ms)", f"{mx:.2f}"),
            ]
    return _status(level, f"{node_name}: {name}", message, hardware_id, values)


def node_status(
    node_name: str, hardware_id: str, state: str, backend: str, device: str, model: str, configure_error: str = ""
):
    """The node's own DiagnosticStatus (``<node>: node``), present whatever the cameras: lifecycle state, backend,
    device, model file and hash; ERROR with the reason after a failed configure, until one succeeds."""
    if configure_error:
        level, message = ERROR, clip_text(f"configure failed: {configure_error}")
    else:
        level, message = OK, state
    values = [("state", state), ("backend", backend), ("device", device), ("model", clip_text(model))]
    return _status(level, f"{node_name}: node", message, hardware_id, values)


def _status(level: int, name: str, message: str, hardware_id: str, values: list[tuple[str, str]]):
    """A diagnostic_msgs/DiagnosticStatus from plain values."""
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

    return DiagnosticStatus(
        level=bytes([level]),
        name=name,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=k, value=v) for k, v in values],
    )
