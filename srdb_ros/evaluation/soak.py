"""``srdb soak``: a long overload run against the node, printing memory, drops and latency over time.

The node runs as its own process. A short lockstep phase measures how many EO + IR frame pairs per second it
answers (timed from its first answer, so the backend's warm-up does not count); the soak then publishes at
``overload`` times that rate for ``minutes``, and every ``report_every`` seconds prints the node's resident
memory, frames sent, answered and dropped (by the node's own count on /diagnostics), and the end-to-end
latency percentiles (publish to receipt of the output, same machine). Inputs are published reliable (and the
node subscribes reliable), so that what is measured is the node's own dropping: best-effort frames larger than
Fast DDS's shared-memory segment travel as UDP fragments and are lost in transport when the machine is loaded.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..core.contract import SCALE, input_topic, output_topic
from ..core.stamps import header_ns
from ..resources import share_dir


@dataclass
class SoakOptions:
    minutes: float = 10.0
    overload: float = 2.0
    width: int = 640
    height: int = 480
    report_every: float = 30.0
    calibrate_seconds: float = 10.0
    out: str = ""  # optional JSON file with every row
    ros_args: tuple[str, ...] = ()
    startup_timeout: float = 180.0


@dataclass
class Tally:
    """Publish and receipt times by (camera, stamp), guarded by one lock."""

    sent: dict[tuple[str, int], float] = field(default_factory=dict)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (receipt time, latency ms)
    answered: int = 0
    node_counters: dict[str, dict[str, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_output(self, camera: str, msg) -> None:
        now = time.monotonic()
        with self.lock:
            t_sent = self.sent.pop((camera, header_ns(msg.header)), None)
            if t_sent is not None:
                self.answered += 1
                self.latencies.append((now, (now - t_sent) * 1e3))

    def on_diagnostics(self, msg) -> None:
        with self.lock:
            for status in msg.status:
                self.node_counters[status.name.rsplit(": ", 1)[-1]] = {kv.key: kv.value for kv in status.values}


def sample_frames(width: int, height: int) -> dict[str, tuple[np.ndarray, str]]:
    """An EO frame (rgb8, ``width`` x ``height``, to deblur) and an IR frame (mono16, 1/4 of that, to x4) from the
    bundled samples."""
    samples = share_dir() / "samples"
    eo = cv2.imread(str(sorted((samples / "eo").glob("*.png"))[0]), cv2.IMREAD_COLOR)
    ir = cv2.imread(str(samples / "ir" / "flir_16bit_frame_000000.png"), cv2.IMREAD_UNCHANGED)
    eo = cv2.resize(eo, (width, height), interpolation=cv2.INTER_AREA)[:, :, ::-1]
    ir = cv2.resize(ir, (max(4, width // SCALE), max(4, height // SCALE)), interpolation=cv2.INTER_AREA)
    return {"eo": (np.ascontiguousarray(eo), "rgb8"), "ir": (ir, "mono16")}


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (NaN when it cannot be read)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def run_soak(opts: SoakOptions, print_row=print) -> list[dict]:
    """Start the node, calibrate, overload; returns one dict per report interval."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from ..ros.conversions import array_to_image_msg
    from ..ros.env import apply_to_current_process, free_domain_id
    from ..ros.launcher import start_node
    from .replay import stop_spinning

    if not opts.minutes > 0 or not opts.overload > 0 or not opts.report_every > 0:
        raise ValueError("minutes, overload and report_every must be > 0")
    domain = free_domain_id()
    apply_to_current_process()  # RMW, AMENT_PREFIX_PATH, localhost discovery; the domain goes to rclpy.init
    log = Path(opts.out).with_suffix(".node.log") if opts.out else Path(tempfile.mkstemp(suffix="-node.log")[1])
    print_row(f"node log: {log}")
    node_args = ["-p", "log_every_n:=0", "-p", "input_qos:=reliable", *opts.ros_args]
    context = rclpy.Context()  # its own: the caller may have rclpy initialised already
    # no rclpy signal handlers: Ctrl-C and SIGTERM (srdb main) raise where the soak is, and the finally below stops
    # the node process
    rclpy.init(context=context, domain_id=domain, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    node = rclpy.create_node("srdb_soak", context=context)
    tally = Tally()
    outputs = {"eo": output_topic("eo", "deblur"), "ir": output_topic("ir", "sr")}
    for camera, topic in outputs.items():
        node.create_subscription(Image, topic, lambda m, c=camera: tally.on_output(c, m), QoSProfile(depth=10))
    node.create_subscription(DiagnosticArray, "/diagnostics", tally.on_diagnostics, 10)
    reliable = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
    pubs = {c: node.create_publisher(Image, input_topic(c), reliable) for c in outputs}
    executor = rclpy.executors.MultiThreadedExecutor(num_threads=2, context=context)
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    frames = {c: array_to_image_msg(*f) for c, f in sample_frames(opts.width, opts.height).items()}
    stamp = [0]

    def send_pair() -> list[tuple[str, int]]:
        keys = []
        for camera, msg in frames.items():
            stamp[0] += 1
            msg.header.stamp.sec = stamp[0]
            key = (camera, header_ns(msg.header))
            with tally.lock:
                tally.sent[key] = time.monotonic()
            pubs[camera].publish(msg)
            keys.append(key)
        return keys

    rows: list[dict] = []
    proc = None
    try:
        proc = start_node(ros_args=node_args, domain_id=domain, log_path=log)
        deadline = time.monotonic() + opts.startup_timeout
        while not (
            all(p.get_subscription_count() for p in pubs.values())
            and all(node.count_publishers(t) for t in outputs.values())
        ):  # matched both ways: inputs reach the node and its outputs reach us
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the enhance node did not start (exit {proc.poll()}); see {log}")
            time.sleep(0.2)
        time.sleep(1.0)
        capacity = measure_pace(send_pair, tally, opts.calibrate_seconds, log)
        rate = capacity * opts.overload
        print_row(
            f"node answers {capacity:.2f} EO+IR pairs/s ({opts.width}x{opts.height} deblur + "
            f"{frames['ir'].width}x{frames['ir'].height} x4); soak at {rate:.2f} pairs/s ({opts.overload:g}x) "
            f"for {opts.minutes:g} min"
        )
        print_row(
            f"{'t (s)':>7} {'RSS MB':>8} {'sent':>7} {'answered':>8} {'node drops':>10} {'failed':>6} "
            f"{'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"
        )
        with tally.lock:
            tally.sent.clear()
            tally.latencies.clear()
            tally.answered = 0
        start = time.monotonic()
        sent = 0
        next_report = start + opts.report_every
        end = start + opts.minutes * 60
        while time.monotonic() < end:
            send_pair()
            sent += 2
            now = time.monotonic()
            if now >= next_report:
                with tally.lock:  # frames the node dropped are never answered: forget them after a minute
                    tally.sent = {k: t for k, t in tally.sent.items() if now - t < 60}
                rows.append(_row(tally, proc.pid, now - start, sent, opts.report_every))
                print_row(_format(rows[-1]))
                next_report += opts.report_every
            if proc.poll() is not None:
                raise RuntimeError(f"the enhance node exited with {proc.returncode} during the soak")
            time.sleep(max(0.0, start + sent / 2 / rate - time.monotonic()))
        time.sleep(2.0)
        rows.append(_row(tally, proc.pid, time.monotonic() - start, sent, time.monotonic() - start, final=True))
        print_row(_format(rows[-1]))
    finally:
        stop_spinning(executor, spin, node, context)
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except Exception:  # noqa: BLE001
                proc.kill()
    if opts.out:
        Path(opts.out).write_text(json.dumps({"options": opts.__dict__, "rows": rows}, indent=2, default=str) + "\n")
    return rows


def measure_pace(send_pair: Callable[[], list[tuple[str, int]]], tally: Tally, seconds: float, log: Path) -> float:
    """Frame pairs per second the node answers in lockstep (each pair sent when the previous one is answered),
    timed from its first answer: the backend's warm-up on the first frames would understate its pace."""
    t_first = None
    pairs = 0
    give_up = time.monotonic() + 120
    while t_first is None or time.monotonic() - t_first < seconds or not pairs:
        keys = send_pair()
        wait_until = time.monotonic() + 10
        while any(k in tally.sent for k in keys) and time.monotonic() < wait_until:
            time.sleep(0.002)
        if not any(k in tally.sent for k in keys):  # a pair lost in transport does not count
            if t_first is None:
                t_first = time.monotonic()
            else:
                pairs += 1
        if time.monotonic() > give_up:
            raise RuntimeError(f"the node answered no frame pairs within 2 minutes; see {log}")
    return pairs / (time.monotonic() - t_first)


def _row(tally: Tally, pid: int, t: float, sent: int, window: float, final: bool = False) -> dict:
    with tally.lock:
        now = time.monotonic()
        recent = [ms for when, ms in tally.latencies if final or now - when <= window]
        counters = {c: dict(v) for c, v in tally.node_counters.items()}
        answered = tally.answered
    lat = np.asarray(recent) if recent else np.asarray([np.nan])
    return {
        "t_s": round(t, 1),
        "rss_mb": round(rss_mb(pid), 1),
        "sent": sent,
        "answered": answered,
        "node_dropped": sum(int(v.get("frames dropped", 0)) for v in counters.values()),
        "node_failed": sum(int(v.get("frames failed", 0)) for v in counters.values()),
        "latency_ms": {
            "p50": float(np.percentile(lat, 50)),
            "p95": float(np.percentile(lat, 95)),
            "max": float(lat.max()),
        },
        "scope": "whole run" if final else f"last {window:g} s",
    }


def _format(row: dict) -> str:
    lat = row["latency_ms"]
    text = (
        f"{row['t_s']:7.0f} {row['rss_mb']:8.1f} {row['sent']:7d} {row['answered']:8d} {row['node_dropped']:10d} "
        f"{row['node_failed']:6d} {lat['p50']:8.1f} {lat['p95']:8.1f} {lat['max']:8.1f}"
    )
    return text + ("   (whole run)" if row["scope"] == "whole run" else "")


def soak_command(opts: SoakOptions) -> int:
    """``srdb soak``."""
    run_soak(opts)
    return 0
