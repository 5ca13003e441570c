"""Issue 7: bags, metrics, the blur synthesiser, and evaluation through the real node."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from srdb_ros.evaluation.bags import BagWriter, bag_qos, image_message, make_bag, read_bag
from srdb_ros.quality.metrics import psnr, quality, rgb_to_y, ssim
from srdb_ros.ros.conversions import decode_image

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_round_trip(tmp_path, storage):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (6, 8, 3), dtype=np.uint8) for _ in range(3)]
    thermal = [rng.integers(0, 65535, (5, 7), dtype=np.uint16) for _ in range(3)]
    with BagWriter(tmp_path / "bag", storage) as bag:
        for i, (f, t) in enumerate(zip(frames, thermal)):
            stamp = 10**9 + i * 10**8
            bag.write("/eo/image_raw", image_message(f, "rgb8", stamp, "eo"), stamp)
            bag.write("/ir/image_raw", image_message(t, "mono16", stamp + 1, "ir"), stamp + 1)
    msgs = list(read_bag(tmp_path / "bag"))
    assert [m.topic for m in msgs] == ["/eo/image_raw", "/ir/image_raw"] * 3
    for i, (eo, ir) in enumerate(zip(msgs[::2], msgs[1::2])):
        d_eo, d_ir = eo.decode(), ir.decode()
        assert eo.timestamp_ns == 10**9 + i * 10**8 == d_eo.header.stamp.sec * 10**9 + d_eo.header.stamp.nanosec
        assert d_ir.header.stamp.nanosec == i * 10**8 + 1 and d_ir.header.frame_id == "ir"
        np.testing.assert_array_equal(decode_image(d_eo).array, frames[i])
        np.testing.assert_array_equal(decode_image(d_ir).array, thermal[i])
    metadata = (tmp_path / "bag" / "metadata.yaml").read_text()
    assert "offered_qos_profiles" in metadata and f"storage_identifier: {storage}" in metadata
    with pytest.raises(FileExistsError):
        BagWriter(tmp_path / "bag")


def test_make_bag_from_folders(tmp_path):
    info = make_bag(SAMPLES / "eo", SAMPLES / "ir", tmp_path / "bag", fps=5, max_frames=2)
    assert info["frames"] == {"eo": 2, "ir": 2}
    msgs = list(read_bag(tmp_path / "bag"))
    by_topic = {}
    for m in msgs:
        by_topic.setdefault(m.topic, []).append(m)
    assert set(by_topic) == {
        "/eo/image_raw",
        "/eo/camera_info",
        "/eo/ground_truth",
        "/ir/image_raw",
        "/ir/camera_info",
        "/ir/ground_truth",
    }
    eo_in, eo_gt = by_topic["/eo/image_raw"][0].decode(), by_topic["/eo/ground_truth"][0].decode()
    assert eo_in.header.stamp == eo_gt.header.stamp and (eo_in.width, eo_in.height) == (eo_gt.width, eo_gt.height)
    blurred, sharp = decode_image(eo_in).array, decode_image(eo_gt).array
    assert not np.array_equal(blurred, sharp) and psnr(blurred, sharp) > 18
    ir_in, ir_gt = by_topic["/ir/image_raw"][0].decode(), by_topic["/ir/ground_truth"][0].decode()
    assert (ir_gt.width, ir_gt.height) == (4 * ir_in.width, 4 * ir_in.height)
    assert {m.decode().encoding for m in by_topic["/ir/image_raw"]} <= {"mono8", "mono16"}
    assert "mono16" in {m.decode().encoding for m in by_topic["/ir/image_raw"]}  # the 16-bit FLIR sample comes first
    stamps = [m.timestamp_ns for m in by_topic["/eo/image_raw"]]
    assert stamps[1] - stamps[0] == 2 * 10**8
    assert bag_qos(tmp_path / "bag")["/eo/image_raw"].reliability.name == "BEST_EFFORT"


@pytest.mark.ros
@pytest.mark.slow
def test_a_bag_of_named_cameras_is_evaluated_by_a_node_with_those_cameras(tmp_path, student_weights):
    pytest.importorskip("rclpy", reason="the ROS 2 Python runtime is not installed")
    bag = tmp_path / "bag"
    made = subprocess.run(
        [sys.executable, "-m", "srdb_ros.cli", "make-bag", "--output", str(bag), "--max-frames", "1"]
        + ["--camera", f"front={SAMPLES / 'eo'}", "--camera", f"thermal:ir={SAMPLES / 'ir'}", "--ir-max-side", "160"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert made.returncode == 0 and "front 1, thermal 1" in made.stdout, made.stdout + made.stderr
    assert {"/front/image_raw", "/thermal/ground_truth"} <= {m.topic for m in read_bag(bag)}
    out = tmp_path / "report"
    args = _torch_node(student_weights)
    result = _cli("evaluate", str(bag), "--out", str(out), *args, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads((out / "metrics.json").read_text())["results"]
    assert {key for key in results if "/" in key} == {"front/deblur", "thermal/sr"}
    assert results["front/deblur"]["frames_out"] == 1 and results["thermal/sr"]["frames_out"] == 1
    with pytest.raises(ValueError, match="NAME=FOLDER"):
        from srdb_ros.evaluation.bags import BagCamera

        BagCamera.parse("Front=/data")


def test_metrics_known_values():
    rng = np.random.default_rng(0)
    img = rng.random((256, 256, 3))
    assert psnr(img, img) == float("inf") and ssim(img, img) == pytest.approx(1.0)
    noisy = img + rng.normal(0, 5 / 255, img.shape)  # sigma 5 on the 8-bit scale -> 20 log10(255/5) = 34.15 dB
    assert psnr(noisy, img) == pytest.approx(20 * np.log10(255 / 5), abs=0.05)
    assert 0.5 < ssim(noisy, img) < 1.0
    assert psnr(np.zeros((8, 8), np.uint8), np.full((8, 8), 255, np.uint8)) == pytest.approx(0.0)
    assert rgb_to_y(np.ones((1, 1, 3)))[0, 0] == pytest.approx(235 / 255)
    sr = quality(noisy, img, "sr")
    assert sr["psnr"] != psnr(noisy, img)  # Y channel with border crop, not RGB
    with pytest.raises(ValueError):
        psnr(img, img[:10])


@pytest.mark.parametrize("transport", ["raw", "compressed"])
@pytest.mark.ros
@pytest.mark.slow
def test_evaluate_a_short_bag_through_the_real_node(tmp_path, student_weights, transport):
    pytest.importorskip("rclpy", reason="the ROS 2 Python runtime is not installed")
    make_bag(
        SAMPLES / "eo", SAMPLES / "ir", tmp_path / "bag", fps=4, max_frames=2, ir_max_side=320, transport=transport
    )
    if transport == "compressed":
        assert {"/eo/image_raw/compressed", "/ir/image_raw/compressed"} <= {m.topic for m in read_bag(tmp_path / "bag")}
    out = tmp_path / "report"
    ros_args = _torch_node(student_weights)
    result = _cli("evaluate", str(tmp_path / "bag"), "--out", str(out), *ros_args, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    eo, ir = metrics["results"]["eo/deblur"], metrics["results"]["ir/sr"]
    assert eo["frames_in"] == 2 and eo["frames_out"] == 2 and ir["frames_out"] == 2  # lockstep: every frame
    assert eo["quality"]["convention"] == "RGB" and ir["quality"]["convention"].startswith("Y channel")
    assert eo["latency_ms"]["p50"] > 0 and np.isfinite(eo["quality"]["baseline_psnr_db"])
    assert list(out.glob("grid_eo_deblur_*.png")) and list(out.glob("grid_ir_sr_*.png"))
    assert (out / "latency.png").is_file() and (out / "report.md").read_text().startswith("# srdb_ros evaluation")
    recorded = {m.topic for m in read_bag(out / "recorded")}
    assert {
        "/eo/deblurred/image_raw",
        "/ir/super_resolved/image_raw",
        "/ir/super_resolved/camera_info",
        "/diagnostics",
    } <= recorded
    rows = (out / "frames.csv").read_text().splitlines()
    assert rows[0].startswith("camera,task,stamp_ns") and len(rows) >= 3
    assert "PSNR" in result.stdout and "report:" in result.stdout


@pytest.mark.ros
@pytest.mark.slow
def test_evaluate_without_ground_truth_reports_timing(tmp_path, student_weights):
    pytest.importorskip("rclpy", reason="the ROS 2 Python runtime is not installed")
    with BagWriter(tmp_path / "bag") as bag:
        for i in range(2):
            stamp = 10**9 + i * 2 * 10**8
            img = np.random.default_rng(i).integers(0, 256, (32, 40, 3), dtype=np.uint8)
            bag.write("/eo/image_raw", image_message(img, "rgb8", stamp, "eo"), stamp)
    out = tmp_path / "report"
    ros_args = _torch_node(student_weights)
    result = _cli(
        "evaluate",
        str(tmp_path / "bag"),
        "--out",
        str(out),
        "--rate",
        "2",
        *ros_args,
        "-p",
        "ir.enabled:=false",
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    eo = json.loads((out / "metrics.json").read_text())["results"]["eo/deblur"]
    assert "quality" not in eo and eo["frames_out"] >= 1 and eo["latency_ms"]["max"] > 0


def _torch_node(weights) -> list[str]:
    """The arguments after ``--`` that give `srdb evaluate`'s node the PyTorch backend and ``weights``."""
    return ["--", "--ros-args", "-p", "backend:=torch", "-p", f"weights_path:={weights}"]


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``srdb ARGS`` in a subprocess. One that outlives ``timeout`` fails the test with its threads' Python stacks
    (faulthandler, on SIGABRT) and its output, and takes its child processes (a node) down with it."""
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    cmd = [sys.executable, "-m", "srdb_ros.cli", *args]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        out, err = proc.communicate(timeout=60)
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(
            f"srdb {args[0]} still ran after {timeout:.0f} s; its stacks and output:\n{out[-2000:]}\n{err[-12000:]}"
        )
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.mark.slow
def test_info_json():
    out = _cli("info", "--model", "student", "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert abs(info["params"] / 1e6 - 3.94) < 0.02 and info["params_deploy"] < info["params"]
    assert set(info["gflops"]) == {"deblur", "sr", "both"}
    # MIMO-UNet-16 at 1240x984 is 595 GFLOP (DESIGN.md); the AFF fusion saves about 5 of them
    assert 585 < info["gflops"]["deblur"] < 595
    assert "GFLOPs" in _cli("info", "--model", "teacher").stdout


@pytest.mark.slow
def test_score_json_for_both_tasks(student_weights):
    deblur = json.loads(
        _cli(
            "score",
            "--model",
            str(student_weights),
            "--task",
            "deblur",
            "--pairs",
            str(SAMPLES / "eo"),
            "--max-images",
            "2",
            "--crop",
            "96",
            "--json",
        ).stdout
    )
    sr = json.loads(
        _cli(
            "score",
            "--model",
            str(student_weights),
            "--task",
            "sr",
            "--hr",
            str(SAMPLES / "ir"),
            "--max-images",
            "2",
            "--crop",
            "96",
            "--json",
        ).stdout
    )
    for result in (deblur, sr):
        assert {"model_psnr", "baseline_psnr", "model_ssim", "baseline_ssim", "count"} <= set(result)
        assert result["count"] == 2 and np.isfinite(result["baseline_psnr"])
    text = _cli(
        "score",
        "--model",
        str(student_weights),
        "--task",
        "deblur",
        "--pairs",
        str(SAMPLES / "eo"),
        "--max-images",
        "1",
        "--crop",
        "64",
    ).stdout
    assert "blurry input PSNR" in text and "mean (1 images, RGB)" in text


@pytest.mark.slow
def test_fig9_compares_integrated_standalone_and_bicubic(tmp_path, student_weights):
    from srdb_ros.models import load_span, save_span
    from srdb_ros.models.span import SPAN

    save_span(SPAN(), tmp_path / "span.safetensors")
    assert load_span(tmp_path / "span.safetensors").upscale == 4
    out = _cli(
        "fig9",
        "--model",
        str(student_weights),
        "--span",
        str(tmp_path / "span.safetensors"),
        "--hr",
        str(SAMPLES / "eo"),
        "--max-images",
        "2",
        "--crop",
        "64",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert set(result) == {"integrated", "standalone_span", "bicubic", "count"} and result["count"] == 2


@pytest.mark.slow
def test_model_commands_default_to_the_bundled_student_and_refuse_silent_random_weights():
    from srdb_ros.models import load_model
    from srdb_ros.resources import bundled_model

    bundled = load_model(bundled_model())
    args = ("--task", "deblur", "--pairs", str(SAMPLES / "eo"), "--max-images", "1", "--crop", "64", "--json")
    default = _cli("score", *args)
    assert default.returncode == 0, default.stderr
    explicit = _cli("score", "--model", str(bundled_model()), *args)
    assert json.loads(default.stdout)["model_psnr"] == json.loads(explicit.stdout)["model_psnr"]
    assert bundled.config.name == "student"
    refused = _cli("score", "--model", "student", *args)
    assert refused.returncode == 2 and "--random-init" in refused.stderr and "Traceback" not in refused.stderr
    random = _cli("score", "--model", "student", "--random-init", *args)
    assert random.returncode == 0 and "randomly initialised" in random.stderr
    json.loads(random.stdout)  # the warning goes to stderr: stdout stays pure JSON


@pytest.mark.slow
def test_bench_json_is_pure_json():
    out = _cli("bench", "--device", "cpu", "--task", "sr", "--repeats", "1", "--warmup", "0", "--no-quality", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    records = json.loads(out.stdout)["records"]  # the whole of stdout parses (skipped backends: stderr)
    assert any(r["backend"].startswith("reference") for r in records)
    assert any(r["backend"].startswith("torch") for r in records)
    torch_modes = {r["mode"] for r in records if r["backend"].startswith("torch")}
    assert {"model", "model_unfused_aff", "end_to_end", "end_to_end_numpy"} <= torch_modes
