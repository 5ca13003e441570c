"""``srdb evaluate``: replay a bag through the enhance node, record its outputs, score them, write a report.

Quality conventions: deblurred frames are scored on RGB against ``<cam>/ground_truth`` of the same stamp, with
the blurry input as the baseline; super-resolved frames on the Y channel with a 4-pixel border crop, with the
bicubic x4 upscale of the input as the baseline. 16-bit frames are mapped to [0, 1] through the ground truth's
1st-99th percentile range first. Latency is receive time minus the time the input frame was published.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.contract import DEFAULT_CAMERAS, SCALE, camera_of, task_of_output
from ..core.image_codec import decode_image
from ..core.imaging import bicubic_resize, to_unit_rgb
from ..core.stamps import cdr_stamp_ns
from ..quality.metrics import quality
from .bags import TYPESTORE, BagContents, BagWriter
from .replay import BLUR_TYPE
from .report import write_report

LOG = logging.getLogger(__name__)


@dataclass
class EvalOptions:
    bag: Path
    out: Path
    attach: bool = False
    namespace: str = ""
    rate: float = 1.0
    loops: int = 1
    params_file: str | None = None
    ros_args: tuple[str, ...] = ()
    startup_timeout: float = 180.0
    drain_timeout: float = 60.0
    progress: bool = True
    domain_id: int | None = None
    realtime: bool = False  # replay at the bag's timing (drops show) instead of lockstep (every frame scored)
    frame_timeout: float = 30.0  # lockstep: longest wait for the node's answer to one frame


def run_replay(opts: EvalOptions, bag: BagContents) -> tuple[list, list, dict]:
    """Start (or attach to) the node, replay, record; returns (published inputs, recorded outputs, info)."""
    import rclpy

    from ..ros.env import apply_to_current_process, free_domain_id
    from ..ros.launcher import start_node
    from .replay import BagPlayer, Recorder, stop_spinning

    domain = opts.domain_id if opts.domain_id is not None else (None if opts.attach else free_domain_id())
    apply_to_current_process(domain)
    topics = bag.topics
    images = [t for t in topics if t.endswith("/image_raw") or t.endswith("/image_raw/compressed")]
    inputs = images + [t for t in topics if t.endswith("/camera_info")]
    if not images:
        raise ValueError(f"{opts.bag}: no <cam>/image_raw or <cam>/image_raw/compressed topic to replay")
    transports = [f"{camera_of(t)}.transport:=compressed" for t in images if t.endswith("/compressed")]
    cameras = tuple(dict.fromkeys(camera_of(t) for t in images))
    proc = None
    context = rclpy.Context()  # its own, so that a caller's rclpy state never matters
    # no rclpy signal handlers: Ctrl-C raises KeyboardInterrupt in every wait, and the finally below cleans up
    rclpy.init(context=context, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    node = rclpy.create_node("srdb_evaluate", context=context)
    executor = rclpy.executors.MultiThreadedExecutor(num_threads=2, context=context)
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    info: dict = {"domain_id": os.environ.get("ROS_DOMAIN_ID"), "attached": opts.attach}
    try:
        if not opts.attach:  # started inside the try: whatever fails, the node process is stopped below
            args = list(opts.ros_args)
            if not set(cameras) <= set(DEFAULT_CAMERAS):  # the node processes the bag's cameras, in their domains
                args += ["-p", f"cameras:=[{','.join(cameras)}]"]
                domains = bag.domains()
                for camera in cameras:
                    if camera not in DEFAULT_CAMERAS and domains.get(camera, "eo") != "eo":
                        args += ["-p", f"{camera}.domain:={domains[camera]}"]
            for setting in transports:  # the node reads the transport the bag holds
                args += ["-p", setting]
            if opts.namespace:
                args += ["-r", f"__ns:={opts.namespace}"]
            proc = start_node(opts.params_file, args, domain, opts.out / "node.log")
        recorder = Recorder(node, opts.namespace, tuple(dict.fromkeys((*DEFAULT_CAMERAS, *cameras))))
        player = BagPlayer(node, bag, inputs, opts.rate, opts.loops, opts.namespace)
        t0 = time.monotonic()
        if not player.wait_for_subscribers(opts.startup_timeout):
            alive = proc is None or proc.poll() is None
            log = (opts.out / "node.log").read_text()[-2000:] if proc is not None else ""
            raise RuntimeError(
                f"the enhance node did not subscribe within {opts.startup_timeout:.0f} s "
                f"({'running' if alive else 'exited'}); its log ends:\n{log}"
            )
        info["node_startup_s"] = round(time.monotonic() - t0, 2)
        time.sleep(0.5)  # let the subscriptions' discovery settle both ways
        t_play = time.monotonic()
        published = player.play(opts.progress, None if opts.realtime else recorder, opts.frame_timeout)
        info["mode"] = "realtime" if opts.realtime else "lockstep"
        info["replay_s"] = round(time.monotonic() - t_play, 3)
        _drain(recorder, published, opts.drain_timeout)
        info["wall_s"] = round(time.monotonic() - t_play, 3)
        records = recorder.snapshot()
    finally:
        stop_spinning(executor, spin, node, context)
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    return published, records, info


def _drain(recorder, published, timeout: float) -> None:
    """Wait until outputs stop arriving: every input answered, or no new output for a while."""
    deadline = time.monotonic() + timeout
    last, last_change = -1, time.monotonic()
    expected = len(published)
    while time.monotonic() < deadline:
        n = sum(1 for r in recorder.snapshot() if not r.topic.endswith("camera_info") and r.topic != "/diagnostics")
        if n != last:
            last, last_change = n, time.monotonic()
        if n >= expected or time.monotonic() - last_change > 8.0:
            time.sleep(0.5)
            return
        time.sleep(0.1)


def write_recording(records, path: Path) -> None:
    with BagWriter(path) as bag:
        for r in records:
            bag.write_raw(r.topic, r.msgtype, r.raw, r.wall_ns)


def score_outputs(bag: BagContents, published, records, mode: str = "lockstep") -> tuple[list[dict], dict, dict]:
    """Per-frame rows, per (camera, task) summaries, and the decoded outputs by (camera, task, stamp)."""
    truth = {(cam, stamp): frame for (kind, cam, stamp), frame in bag.frames.items() if kind == "gt"}
    inputs = {(cam, stamp): frame for (kind, cam, stamp), frame in bag.frames.items() if kind == "input"}
    outputs: dict[tuple[str, str, int], tuple[np.ndarray, str]] = {}
    sent: dict[tuple[str, int], list[int]] = defaultdict(list)
    for p in published:
        sent[(camera_of(p.topic), p.stamp_ns)].append(p.wall_ns)
    blur = {
        (camera_of(r.topic), cdr_stamp_ns(r.raw)): TYPESTORE.deserialize_cdr(r.raw, r.msgtype).vector.z
        for r in records
        if r.msgtype == BLUR_TYPE
    }
    rows = []
    for r in records:
        if r.msgtype != "sensor_msgs/msg/Image":
            continue
        cam = camera_of(r.topic)
        task = task_of_output(r.topic)
        stamp = cdr_stamp_ns(r.raw)
        decoded = decode_image(TYPESTORE.deserialize_cdr(r.raw, r.msgtype))
        out, order = outputs[(cam, task, stamp)] = decoded.array, decoded.color_order
        sends = [w for w in sent.get((cam, stamp), []) if w <= r.wall_ns]
        row = {
            "camera": cam,
            "task": task,
            "stamp_ns": stamp,
            "width": out.shape[1],
            "height": out.shape[0],
            "encoding_dtype": str(out.dtype),
            "latency_ms": round((r.wall_ns - max(sends)) / 1e6, 3) if sends else None,
            "receive_wall_ns": r.wall_ns,
            "blur_px": round(float(blur[(cam, stamp)]), 3) if (cam, stamp) in blur else None,
        }
        gt = truth.get((cam, stamp))
        inp = inputs.get((cam, stamp))
        if gt is not None and gt[0].shape == out.shape and inp is not None:
            g = to_unit_rgb(gt[0], gt[1])
            o = to_unit_rgb(out, order, gt[0])
            i = to_unit_rgb(inp[0], inp[1], gt[0])
            base = i if task == "deblur" else bicubic_resize(i, float(SCALE))
            if base.shape == g.shape:
                q, b = quality(o, g, task, SCALE), quality(base, g, task, SCALE)
                row.update(
                    psnr=round(q["psnr"], 3),
                    ssim=round(q["ssim"], 4),
                    baseline_psnr=round(b["psnr"], 3),
                    baseline_ssim=round(b["ssim"], 4),
                )
        rows.append(row)
    return rows, summarize(rows, published, records, mode), outputs


UNANSWERED_WHY = {
    "lockstep": "no output within the frame timeout: the node rejected the frame, has the camera disabled, or "
    "was still busy (see node.log and /diagnostics)",
    "realtime": "dropped by the node: frames came faster than it processed them (it keeps only the newest; "
    "replay without --realtime to score every frame)",
}


def summarize(rows: list[dict], published, records, mode: str = "lockstep") -> dict:
    summary: dict = {}
    inputs_per_cam: dict[str, int] = defaultdict(int)
    for p in published:
        inputs_per_cam[camera_of(p.topic)] += 1
    for cam, task in sorted({(r["camera"], r["task"]) for r in rows}):
        group = [r for r in rows if r["camera"] == cam and r["task"] == task]
        lat = [r["latency_ms"] for r in group if r["latency_ms"] is not None]
        span = (max(r["receive_wall_ns"] for r in group) - min(r["receive_wall_ns"] for r in group)) / 1e9
        entry = {
            "frames_in": inputs_per_cam[cam],
            "frames_out": len(group),
            "frames_unanswered": inputs_per_cam[cam] - len({r["stamp_ns"] for r in group}),
            "unanswered_reason": UNANSWERED_WHY[mode],
            "throughput_fps": round((len(group) - 1) / span, 3) if len(group) > 1 and span > 0 else None,
            "latency_ms": {
                "p50": _pct(lat, 50),
                "p95": _pct(lat, 95),
                "max": round(max(lat), 3) if lat else None,
                "mean": round(float(np.mean(lat)), 3) if lat else None,
            },
        }
        scored = [r for r in group if "psnr" in r]
        if scored:
            entry["quality"] = {
                "convention": "RGB" if task == "deblur" else "Y channel, 4-pixel border",
                "baseline": "blurry input" if task == "deblur" else "bicubic x4 of the input",
                "frames_scored": len(scored),
                "psnr_db": round(float(np.mean([r["psnr"] for r in scored])), 3),
                "ssim": round(float(np.mean([r["ssim"] for r in scored])), 4),
                "baseline_psnr_db": round(float(np.mean([r["baseline_psnr"] for r in scored])), 3),
                "baseline_ssim": round(float(np.mean([r["baseline_ssim"] for r in scored])), 4),
            }
            entry["quality"]["psnr_gain_db"] = round(
                entry["quality"]["psnr_db"] - entry["quality"]["baseline_psnr_db"], 3
            )
        summary[f"{cam}/{task}"] = entry
    for cam, count in inputs_per_cam.items():
        if not any(key.startswith(f"{cam}/") for key in summary):
            summary[f"{cam}/none"] = {
                "frames_in": count,
                "frames_out": 0,
                "frames_unanswered": count,
                "unanswered_reason": UNANSWERED_WHY[mode],
                "throughput_fps": None,
                "latency_ms": {"p50": None, "p95": None, "max": None, "mean": None},
            }
    diag = [r for r in records if r.topic == "/diagnostics"]
    if diag:
        last = TYPESTORE.deserialize_cdr(diag[-1].raw, diag[-1].msgtype)
        summary["node_diagnostics"] = {s.name: {kv.key: kv.value for kv in s.values} for s in last.status}
    return summary


def _pct(values, q):
    return round(float(np.percentile(values, q)), 3) if values else None


def prepare_output(out: Path) -> None:
    """Make ``--out``, refusing one that holds anything (a report must not mix two runs)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"--out {out} already holds files: choose a new folder or remove it")
    out.mkdir(parents=True, exist_ok=True)


def evaluate(opts: EvalOptions) -> dict:

    bag = BagContents.load(opts.bag)  # read and decoded once, for replay, scoring and the report
    errors = bag.input_type_errors()
    if errors:
        raise ValueError(f"{opts.bag}: {'; '.join(errors)}")
    prepare_output(opts.out)  # checked before the node starts or the replay begins
    published, records, info = run_replay(opts, bag)
    write_recording(records, opts.out / "recorded")
    rows, summary, outputs = score_outputs(bag, published, records, info["mode"])
    metrics = {"bag": str(opts.bag), "rate": opts.rate, "loops": opts.loops, "run": info, "results": summary}
    (opts.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    with open(opts.out / "frames.csv", "w", newline="") as f:
        fields = [
            "camera",
            "task",
            "stamp_ns",
            "width",
            "height",
            "encoding_dtype",
            "latency_ms",
            "psnr",
            "ssim",
            "baseline_psnr",
            "baseline_ssim",
            "blur_px",
            "receive_wall_ns",
        ]
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    write_report(opts.out, bag, metrics, rows, outputs)
    return metrics


def print_summary(metrics: dict, out: Path) -> None:
    print(f"\nreport: {out / 'report.md'}")
    for key, entry in metrics["results"].items():
        if key == "node_diagnostics":
            continue
        lat = entry["latency_ms"]
        line = (
            f"  {key:10s} frames {entry['frames_out']}/{entry['frames_in']} out/in, latency p50 {lat['p50']} ms "
            f"p95 {lat['p95']} ms"
        )
        if "quality" in entry:
            q = entry["quality"]
            line += (
                f"; PSNR {q['psnr_db']:.2f} dB vs {q['baseline_psnr_db']:.2f} ({q['baseline']}), "
                f"gain {q['psnr_gain_db']:+.2f} dB; SSIM {q['ssim']:.3f} vs {q['baseline_ssim']:.3f}"
            )
        print(line)
        if entry["frames_unanswered"]:
            print(f"    {entry['frames_unanswered']} frame(s) unanswered: {entry['unanswered_reason']}")


def evaluate_command(opts: EvalOptions) -> int:
    """``srdb evaluate``."""
    metrics = evaluate(opts)
    print_summary(metrics, opts.out)
    return 0
