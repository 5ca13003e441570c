"""Issue 6: the enhance node in its own process, driven by real rclpy publishers in this one."""

from __future__ import annotations

import ast
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("rclpy", reason="the ROS 2 Python runtime (ros-jazzy-rclpy wheels) is not installed")
pytestmark = pytest.mark.ros  # every test here talks to a node process or reads its files

from ros_probe import RosProbe, start_test_node, stop_process  # noqa: E402

from srdb_ros.ros.conversions import array_to_image_msg  # noqa: E402
from srdb_ros.ros.launcher import start_node  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def node_process(student_weights, tmp_path_factory):
    log = tmp_path_factory.mktemp("node") / "node.log"
    proc = start_test_node(
        log, f"weights_path:={student_weights}", "max_pixels:=40000", "log_every_n:=5", "diagnostics.period:=0.5"
    )
    yield proc, log
    stop_process(proc)


@pytest.fixture(scope="module")
def probe(node_process):
    probe = RosProbe()
    assert probe.wait_for_node(90), Path(node_process[1]).read_text()
    yield probe
    probe.close()


def _frame(encoding: str, h: int, w: int, seed: int = 0, stamp: int = 0, frame_id: str = "cam"):
    rng = np.random.default_rng(seed)
    if encoding in ("rgb8", "bgr8"):
        arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    elif encoding == "mono8":
        arr = rng.integers(0, 256, (h, w), dtype=np.uint8)
    else:
        arr = rng.integers(2000, 4000, (h, w)).astype(np.uint16)
    msg = array_to_image_msg(arr, encoding)
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp, 1234
    msg.header.frame_id = frame_id
    return msg


def _stamps(msgs) -> set[int]:
    return {m.header.stamp.sec for m in msgs}


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono8", "mono16", "16UC1"])
def test_each_encoding_eo_deblur_and_ir_sr(probe, encoding):
    stamp = 100 + ["rgb8", "bgr8", "mono8", "mono16", "16UC1"].index(encoding)
    eo, ir = _frame(encoding, 24, 32, 1, stamp, "eo_optical"), _frame(encoding, 12, 20, 2, stamp, "ir_optical")
    ok = probe.wait_for(
        lambda: (
            stamp in _stamps(probe.messages("eo/deblurred/image_raw"))
            and stamp in _stamps(probe.messages("ir/super_resolved/image_raw"))
        ),
        republish=lambda: (probe.pubs["eo"].publish(eo), probe.pubs["ir"].publish(ir)),
    )
    assert ok
    out_eo = next(m for m in probe.messages("eo/deblurred/image_raw") if m.header.stamp.sec == stamp)
    out_ir = next(m for m in probe.messages("ir/super_resolved/image_raw") if m.header.stamp.sec == stamp)
    assert (out_eo.width, out_eo.height, out_eo.encoding) == (32, 24, encoding)
    assert (out_ir.width, out_ir.height, out_ir.encoding) == (80, 48, encoding)
    assert out_eo.header.frame_id == "eo_optical" and out_eo.header.stamp.nanosec == 1234
    assert out_ir.header.frame_id == "ir_optical"
    channels = 3 if encoding in ("rgb8", "bgr8") else 1
    itemsize = 2 if encoding in ("mono16", "16UC1") else 1
    assert out_eo.step == 32 * channels * itemsize and len(out_eo.data) == out_eo.step * 24


def test_camera_info_is_scaled_with_super_resolution(probe):
    from sensor_msgs.msg import CameraInfo

    info = CameraInfo()
    info.header.frame_id = "ir_optical"
    info.width, info.height = 20, 12
    info.k = [50.0, 0.0, 10.0, 0.0, 52.0, 6.0, 0.0, 0.0, 1.0]
    info.p = [50.0, 0.0, 10.0, -5.0, 0.0, 52.0, 6.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.header.stamp.sec, info.header.stamp.nanosec = 200, 1234  # a camera stamps its info like its frame
    frame = _frame("mono8", 12, 20, 3, 200, "ir_optical")
    ok = probe.wait_for(
        lambda: any(m.header.stamp.sec == 200 for m in probe.messages("ir/super_resolved/camera_info")),
        republish=lambda: (probe.pubs["ir_info"].publish(info), probe.pubs["ir"].publish(frame)),
    )
    assert ok
    out = next(m for m in probe.messages("ir/super_resolved/camera_info") if m.header.stamp.sec == 200)
    assert (out.width, out.height) == (80, 48)
    assert list(out.k) == pytest.approx([200.0, 0.0, 41.5, 0.0, 208.0, 25.5, 0.0, 0.0, 1.0])
    assert list(out.p)[:4] == pytest.approx([200.0, 0.0, 41.5, -20.0])


def test_camera_info_is_paired_by_stamp_not_newest(probe):
    """Each frame gets the camera_info of its own stamp; one of another stamp is not copied onto it."""
    from sensor_msgs.msg import CameraInfo

    def info(stamp: int, fx: float):
        msg = CameraInfo()
        msg.width, msg.height = 20, 12
        msg.k = [fx, 0.0, 10.0, 0.0, fx, 6.0, 0.0, 0.0, 1.0]
        msg.header.stamp.sec, msg.header.stamp.nanosec = stamp, 1234
        return msg

    own, newer = info(230, 50.0), info(231, 99.0)  # the newer info belongs to the next frame
    frame = _frame("mono8", 12, 20, 3, 230, "ir_optical")
    assert probe.wait_for(
        lambda: 230 in _stamps(probe.messages("ir/super_resolved/camera_info")),
        republish=lambda: (
            probe.pubs["ir_info"].publish(own),
            probe.pubs["ir_info"].publish(newer),
            probe.pubs["ir"].publish(frame),
        ),
    )
    out = next(m for m in probe.messages("ir/super_resolved/camera_info") if m.header.stamp.sec == 230)
    assert out.k[0] == pytest.approx(200.0)  # 4 x 50: its own info, not the newest (99)
    lonely = _frame("mono8", 12, 20, 3, 240, "ir_optical")  # no info of its stamp
    assert probe.wait_for(
        lambda: 240 in _stamps(probe.messages("ir/super_resolved/image_raw")),
        republish=lambda: probe.pubs["ir"].publish(lonely),
    )
    time.sleep(0.5)
    assert 240 not in _stamps(probe.messages("ir/super_resolved/camera_info"))
    assert probe.wait_for(lambda: int(_values(probe, "ir").get("camera_info unmatched", "0")) >= 1, timeout=5)
    assert probe.set_parameter("camera_info_tolerance", 10.0).successful  # within 10 s: paired with the nearest
    try:
        later = _frame("mono8", 12, 20, 3, 241, "ir_optical")
        assert probe.wait_for(
            lambda: 241 in _stamps(probe.messages("ir/super_resolved/camera_info")),
            republish=lambda: (probe.pubs["ir_info"].publish(newer), probe.pubs["ir"].publish(later)),
        )
    finally:
        probe.set_parameter("camera_info_tolerance", 0.0)


def _values(probe, camera: str) -> dict:
    status = _camera_status(probe, camera)
    return {kv.key: kv.value for kv in status.values} if status is not None else {}


def test_mismatched_or_broken_camera_info_is_counted_not_propagated(probe):
    from sensor_msgs.msg import CameraInfo

    wrong_size = CameraInfo()
    wrong_size.width, wrong_size.height = 640, 480  # for a 20x12 image
    wrong_size.k = [50.0, 0.0, 10.0, 0.0, 52.0, 6.0, 0.0, 0.0, 1.0]
    not_finite = CameraInfo()
    not_finite.width, not_finite.height = 20, 12
    not_finite.k = [float("nan"), 0.0, 10.0, 0.0, 52.0, 6.0, 0.0, 0.0, 1.0]
    for stamp, info in ((210, wrong_size), (220, not_finite)):
        info.header.stamp.sec, info.header.stamp.nanosec = stamp, 1234
        probe.clear()
        frame = _frame("mono8", 12, 20, 3, stamp, "ir_optical")
        assert probe.wait_for(
            lambda s=stamp: s in _stamps(probe.messages("ir/super_resolved/image_raw")),
            republish=lambda i=info, f=frame: (probe.pubs["ir_info"].publish(i), probe.pubs["ir"].publish(f)),
        )
        time.sleep(0.5)
        assert stamp not in _stamps(probe.messages("ir/super_resolved/camera_info"))
    assert probe.wait_for(lambda: _camera_status(probe, "ir") is not None, timeout=5)
    values = {kv.key: kv.value for kv in _camera_status(probe, "ir").values}
    assert int(values["camera_info mismatches"]) >= 2


def test_task_changes_at_runtime_and_bad_values_are_rejected(probe):
    result = probe.set_parameter("eo.task", "sharpen")
    assert not result.successful and "eo.task must be one of" in result.reason
    assert probe.set_parameter("eo.task", "both").successful
    frame = _frame("rgb8", 16, 24, 4, 300)
    ok = probe.wait_for(
        lambda: (
            300 in _stamps(probe.messages("eo/super_resolved/image_raw"))
            and 300 in _stamps(probe.messages("eo/deblurred/image_raw"))
        ),
        republish=lambda: probe.pubs["eo"].publish(frame),
    )
    assert ok
    sr = next(m for m in probe.messages("eo/super_resolved/image_raw") if m.header.stamp.sec == 300)
    assert (sr.width, sr.height) == (96, 64)
    assert probe.node.count_publishers("/eo/super_resolved/image_raw") == 1
    assert probe.set_parameter("eo.task", "deblur").successful
    # only the selected task's outputs are advertised: x4 SR goes with the task change
    assert probe.wait_for(lambda: probe.node.count_publishers("/eo/super_resolved/image_raw") == 0, timeout=10)
    assert probe.node.count_publishers("/eo/deblurred/image_raw") == 1
    assert not probe.set_parameter("backend", "tensorrt").successful  # read-only after start


def _camera_status(probe, camera: str):
    arrays = probe.messages("/diagnostics")
    statuses = [s for a in arrays for s in a.status if s.name.endswith(f": {camera}")]
    return statuses[-1] if statuses else None


def test_malformed_frames_are_counted_and_the_node_keeps_serving(probe, node_process):
    bad_encoding = _frame("rgb8", 8, 8, 5, 400)
    bad_encoding.encoding = "yuv420"
    short = _frame("rgb8", 8, 8, 5, 401)
    short.data = bytes(short.data)[:-10]
    zero = _frame("mono8", 8, 8, 5, 402)
    zero.height, zero.width, zero.step, zero.data = 0, 0, 0, b""
    huge = _frame("mono8", 250, 250, 5, 403)  # 62500 px > max_pixels 40000
    for msg in (bad_encoding, short, zero, huge):
        for _ in range(3):
            probe.pubs["eo"].publish(msg)
            time.sleep(0.1)
    good_ir = _frame("mono8", 12, 20, 6, 404)
    good_eo = _frame("rgb8", 16, 16, 6, 405)
    assert probe.wait_for(
        lambda: (
            404 in _stamps(probe.messages("ir/super_resolved/image_raw"))
            and 405 in _stamps(probe.messages("eo/deblurred/image_raw"))
        ),
        republish=lambda: (probe.pubs["ir"].publish(good_ir), probe.pubs["eo"].publish(good_eo)),
    )
    assert node_process[0].poll() is None

    def failed_count():
        status = _camera_status(probe, "eo")
        values = {kv.key: kv.value for kv in status.values} if status else {}
        return int(values.get("frames failed", 0))

    assert probe.wait_for(lambda: failed_count() >= 4, timeout=10)
    log = Path(node_process[1]).read_text()
    assert "unsupported encoding 'yuv420'" in log
    assert "expected step*height" in log
    assert "exceeds max_pixels" in log
    levels = [s.level for a in probe.messages("/diagnostics") for s in a.status if s.name.endswith(": eo")]
    assert bytes([2]) in levels  # ERROR was reported while frames failed


def test_flood_stays_current_and_counts_drops(probe):
    frames = [_frame("rgb8", 120, 160, 7, 1000 + i) for i in range(60)]
    probe.clear()
    for msg in frames:
        probe.pubs["eo"].publish(msg)
        time.sleep(0.005)
    assert probe.wait_for(
        lambda: 1059 in _stamps(probe.messages("eo/deblurred/image_raw")),
        republish=lambda: probe.pubs["eo"].publish(frames[-1]),
        period=1.0,
    )
    outputs = [
        m.header.stamp.sec for m in probe.messages("eo/deblurred/image_raw") if 1000 <= m.header.stamp.sec < 1060
    ]
    assert len(set(outputs)) < 40  # it skipped stale frames instead of queueing them
    assert outputs == sorted(outputs)

    def dropped():
        status = _camera_status(probe, "eo")
        return int({kv.key: kv.value for kv in status.values}.get("frames dropped", 0)) if status else 0

    assert probe.wait_for(lambda: dropped() > 0, timeout=10)


def test_diagnostics_report_rates_latency_and_backend(probe):
    frame = _frame("rgb8", 16, 16, 8, 500)
    assert probe.wait_for(
        lambda: 500 in _stamps(probe.messages("eo/deblurred/image_raw")),
        republish=lambda: probe.pubs["eo"].publish(frame),
    )
    probe.clear()
    assert probe.wait_for(lambda: _camera_status(probe, "eo") is not None, timeout=5)
    status = _camera_status(probe, "eo")
    values = {kv.key: kv.value for kv in status.values}
    assert status.hardware_id == "srdb_enhancer"
    assert values["backend"].startswith("torch") and values["task"] == "deblur"
    for stage in ("convert", "preprocess", "infer", "postprocess", "publish", "total"):
        assert float(values[f"{stage} p50 (ms)"]) >= 0.0
        assert float(values[f"{stage} p95 (ms)"]) >= float(values[f"{stage} p50 (ms)"])
    assert float(values["infer max (ms)"]) > 0 and int(values["frames published"]) > 0


def test_node_logs_every_n_frames(node_process, probe):
    assert "frames out" in Path(node_process[1]).read_text()


@pytest.mark.slow
def test_missing_weights_stop_the_node_with_one_clear_line(tmp_path):
    proc = start_node(
        ros_args=["-p", "backend:=torch", "-p", f"weights_path:={tmp_path / 'gone.safetensors'}"],
        log_path=tmp_path / "log",
    )
    assert proc.wait(timeout=60) == 2
    assert "gone.safetensors: weight file not found" in (tmp_path / "log").read_text()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["-p", "diagnostics.window:=0"], "diagnostics.window must be >= 2"),
        (["-p", "diagnostics.period:=0.0"], "diagnostics.period must be >= 0.05"),
        (["-p", "tile_size:=-5"], "tile_size must be >= 0"),
        (["-p", "tile_size:=33"], "tile_size must be 0 (off) or at least 2 * tile_overlap + 32"),
        (["-p", "tile_size:=16.0"], "tile_size must be a int, got float"),
        (["-p", "precision:=fp64"], "precision must be one of"),
        (["-p", "eo.taks:=sr"], "unknown parameter 'eo.taks'; did you mean eo.task?"),
        (["-p", "device:=cuda", "-p", "backend:=torch"], "no CUDA GPU"),
        (["-p", "device:=cuda:1", "-p", "backend:=torch"], "device cuda:1: torch sees no CUDA GPU"),
        (["-p", "device:=gpu0"], "device: 'gpu0' is not one of auto, cpu, cuda or cuda:N"),
    ],
)
@pytest.mark.slow
def test_invalid_start_values_end_the_node_with_one_line_and_exit_2(tmp_path, args, says):
    import torch

    if any(a.startswith("device:=cuda") for a in args) and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    proc = start_node(ros_args=args, log_path=tmp_path / "log")
    try:
        code = proc.wait(timeout=90)
    finally:
        if proc.poll() is None:  # a node that did not refuse the value must not outlive the test
            proc.kill()
            proc.wait()
    assert code == 2
    log = (tmp_path / "log").read_text()
    assert says in log, log
    assert "Traceback" not in log and len([line for line in log.splitlines() if "cannot start" in line]) == 1


def test_use_sim_time_is_accepted(tmp_path, student_weights):
    from srdb_ros.ros.params import SPECS, check_overrides, descriptor, validate

    check_overrides({"use_sim_time": True, "qos_overrides./eo/image_raw.subscription.depth": 5})
    assert validate({"use_sim_time": True}, lambda name: SPECS[name].default) is None
    assert descriptor(SPECS["tile_overlap"]).integer_range[0].to_value == 1024
    assert descriptor(SPECS["agc.high_percentile"]).floating_point_range[0].to_value == 100.0


def test_launch_file_declares_its_arguments():
    tree = ast.parse((ROOT / "launch" / "enhance.launch.py").read_text())
    names = {
        node.elts[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Tuple)
        and node.elts
        and isinstance(node.elts[0], ast.Constant)
        and isinstance(node.elts[0].value, str)
        and len(node.elts) == 3
    }
    assert {"params_file", "namespace", "eo_image", "ir_image"} <= names
    assert "PARAMETER_ARGUMENTS" in (ROOT / "launch" / "enhance.launch.py").read_text()


def test_launch_arguments_override_the_params_file_only_when_given():
    from srdb_ros.ros.launch_args import PARAMETER_ARGUMENTS, parameter_overrides

    assert parameter_overrides({name: "" for name in PARAMETER_ARGUMENTS}) == {}  # the user's file survives
    assert parameter_overrides({"eo_task": "both", "ir_task": ""}) == {"eo.task": "both"}
    assert parameter_overrides({"force_engine_update": "True"}) == {"force_engine_update": True}
    assert parameter_overrides({"managed": "true", "eo_transport": "compressed"}) == {
        "managed": True,
        "eo.transport": "compressed",
    }
    with pytest.raises(ValueError):
        parameter_overrides({"force_engine_update": "maybe"})
    assert parameter_overrides({"cameras": "[front, rear,thermal]"}) == {"cameras": ["front", "rear", "thermal"]}
    with pytest.raises(ValueError, match="twice"):
        parameter_overrides({"cameras": "front,front"})
    source = (ROOT / "launch" / "enhance.launch.py").read_text()
    assert "parameter_overrides(" in source and '"eo.task": LaunchConfiguration' not in source


@pytest.mark.launch
def test_launch_description_keeps_a_params_file_value(tmp_path):
    pytest.importorskip("launch_ros", reason="launch/launch_ros are not installable from PyPI here (ROS needed)")
    import importlib.util

    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    from launch import LaunchContext

    spec = importlib.util.spec_from_file_location("enhance_launch", ROOT / "launch" / "enhance.launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    context = LaunchContext()
    context.launch_configurations["params_file"] = str(tmp_path / "user.yaml")  # as params_file:=... does
    for action in description.entities:
        if isinstance(action, DeclareLaunchArgument):
            action.visit(context)
    (opaque,) = [a for a in description.entities if isinstance(a, OpaqueFunction)]
    (node,) = opaque.execute(context)
    assert all(not isinstance(p, dict) or "eo.task" not in p for p in node._Node__parameters)


def test_managed_in_a_parameter_file_and_the_launch_argument_choices(tmp_path):
    from srdb_ros.ros.launch_args import argument_choices, managed_in

    cases = {
        "all.yaml": ({"/**": {"ros__parameters": {"managed": True}}}, True),
        "named.yaml": ({"/front/enhance_node": {"ros__parameters": {"managed": True}}}, True),
        "other.yaml": ({"other_node": {"ros__parameters": {"managed": True}}}, False),
        "off.yaml": ({"/**": {"ros__parameters": {"managed": False, "eo": {"task": "sr"}}}}, False),
    }
    for name, (content, managed) in cases.items():
        (tmp_path / name).write_text(yaml.safe_dump(content))
        assert managed_in(tmp_path / name) is managed, name
    assert managed_in(tmp_path / "missing.yaml") is False
    assert argument_choices("eo_task") == ["", "deblur", "sr", "both"]
    assert argument_choices("use_sim_time") == ["", "true", "false"] and argument_choices("engine_path") is None


def _launch_node(tmp_path, arguments: dict):
    """The node action the launch file makes for these launch arguments (launch/launch_ros needed)."""
    import importlib.util

    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    from launch import LaunchContext

    spec = importlib.util.spec_from_file_location("enhance_launch", ROOT / "launch" / "enhance.launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    context = LaunchContext()
    context.launch_configurations.update(arguments)
    for action in description.entities:
        if isinstance(action, DeclareLaunchArgument):
            action.visit(context)
    (opaque,) = [a for a in description.entities if isinstance(a, OpaqueFunction)]
    (node,) = opaque.execute(context)
    return node


@pytest.mark.launch
def test_launch_honours_managed_in_the_file_use_sim_time_and_refuses_a_value_off_the_choices(tmp_path):
    pytest.importorskip("launch_ros", reason="launch/launch_ros are not installable from PyPI here (ROS needed)")
    from launch_ros.actions import LifecycleNode

    managed = tmp_path / "managed.yaml"
    managed.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"managed": True}}}))
    assert isinstance(_launch_node(tmp_path, {"params_file": str(managed)}), LifecycleNode)
    plain = _launch_node(tmp_path, {"params_file": str(managed), "managed": "false", "use_sim_time": "true"})
    assert not isinstance(plain, LifecycleNode)
    given = [p for p in plain._Node__parameters if isinstance(p, dict)]  # keys normalised to substitutions
    assert [{"".join(part.text for part in key): value for key, value in p.items()} for p in given] == [
        {"managed": False, "use_sim_time": True}
    ]
    with pytest.raises(Exception, match="denoise"):
        _launch_node(tmp_path, {"params_file": str(managed), "eo_task": "denoise"})


@pytest.mark.slow
@pytest.mark.launch
def test_launch_file_runs_with_launch_ros(tmp_path, student_weights, probe):
    pytest.importorskip(
        "launch_ros", reason="launch/launch_ros are not installable from PyPI here (ROS install needed)"
    )
    import os
    import shutil

    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from test_package import _copy_source

    import launch

    ws = tmp_path / "ws"
    _copy_source(ws / "src" / "srdb_ros")
    colcon = shutil.which("colcon", path=str(Path(sys.executable).parent))
    subprocess.run([colcon, "build", "--base-paths", "src"], cwd=ws, check=True, capture_output=True, timeout=600)
    prefix = ws / "install" / "srdb_ros"
    site = next(prefix.glob("lib/python3*/site-packages"))
    os.environ["AMENT_PREFIX_PATH"] = f"{prefix}{os.pathsep}{os.environ.get('AMENT_PREFIX_PATH', '')}"
    os.environ["PYTHONPATH"] = f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            {"/**": {"ros__parameters": {"weights_path": str(student_weights), "diagnostics": {"period": 0.5}}}}
        )
    )
    ls = launch.LaunchService()
    ls.include_launch_description(
        launch.LaunchDescription(
            [
                launch.actions.IncludeLaunchDescription(
                    PythonLaunchDescriptionSource(str(prefix / "share" / "srdb_ros" / "launch" / "enhance.launch.py")),
                    launch_arguments={
                        "namespace": "front",
                        "backend": "torch",
                        "params_file": str(params),
                        "eo_task": "both",
                        "cameras": "[eo, thermal]",
                    }.items(),
                ),
                launch.actions.TimerAction(period=25.0, actions=[launch.actions.Shutdown()]),
            ]
        )
    )
    assert ls.run() == 0
    names = {s.name for a in probe.messages("/diagnostics") for s in a.status}
    assert {"/front/enhance_node: eo", "/front/enhance_node: thermal"} <= names


def _wait_output(probe, topic: str, stamp: int, publish) -> object:
    """Republish until the output with ``stamp`` arrives on ``topic``; returns it."""
    assert probe.wait_for(lambda: stamp in _stamps(probe.messages(topic)), republish=publish), topic
    return next(m for m in probe.messages(topic) if m.header.stamp.sec == stamp)


def _pixels(msg) -> np.ndarray:
    from srdb_ros.ros.conversions import decode_image

    return decode_image(msg).array


def test_camera_encodings_are_converted_once_and_outputs_follow_the_rule(probe):
    """Bayer, YUV, alpha and OpenCV-typed frames are read; a Bayer frame gives the same output as its reference
    conversion (OpenCV's demosaicing) sent as rgb8."""
    import cv2

    rng = np.random.default_rng(11)
    rgb = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    mosaic = np.empty((24, 32), np.uint8)  # RGGB: R at (0, 0), G at (0, 1) and (1, 0), B at (1, 1)
    mosaic[0::2, 0::2], mosaic[0::2, 1::2] = rgb[0::2, 0::2, 0], rgb[0::2, 1::2, 1]
    mosaic[1::2, 0::2], mosaic[1::2, 1::2] = rgb[1::2, 0::2, 1], rgb[1::2, 1::2, 2]
    reference = cv2.cvtColor(mosaic, cv2.COLOR_BayerBG2RGB)  # OpenCV names the RGGB pattern by its 2nd row
    bayer = array_to_image_msg(mosaic, "mono8")
    bayer.encoding = "bayer_rggb8"
    cases = [
        (bayer, 600, "rgb8"),
        (array_to_image_msg(reference, "rgb8"), 601, "rgb8"),
        (_raw_msg(rng.integers(0, 256, (24, 32, 2), dtype=np.uint8), "yuv422"), 602, "rgb8"),
        (_raw_msg(rng.integers(0, 256, (24, 32, 4), dtype=np.uint8), "rgba8"), 603, "rgb8"),
        (_raw_msg(rng.integers(0, 256, (24, 32, 4), dtype=np.uint8), "bgra8"), 604, "bgr8"),
        (_raw_msg(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), "8UC3"), 605, "bgr8"),
        (_raw_msg((280 + 30 * rng.random((24, 32))).astype(np.float32), "32FC1"), 606, "32FC1"),
    ]
    outputs = {}
    for msg, stamp, expected in cases:
        msg.header.stamp.sec = stamp
        out = _wait_output(probe, "eo/deblurred/image_raw", stamp, lambda m=msg: probe.pubs["eo"].publish(m))
        assert (out.encoding, out.width, out.height) == (expected, 32, 24), msg.encoding
        outputs[stamp] = _pixels(out)
    np.testing.assert_array_equal(outputs[600], outputs[601])
    assert 280 - 1 < outputs[606].min() and outputs[606].max() < 310 + 1  # temperatures stay kelvin


def _raw_msg(arr: np.ndarray, encoding: str):
    from sensor_msgs.msg import Image

    msg = Image()
    msg.height, msg.width, msg.encoding = arr.shape[0], arr.shape[1], encoding
    msg.step = arr.nbytes // arr.shape[0]
    msg.data = arr.tobytes()
    return msg


def test_compressed_transport_matches_raw_input(probe):
    import cv2
    from sensor_msgs.msg import CompressedImage

    rng = np.random.default_rng(12)
    bgr = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    raw = array_to_image_msg(bgr, "bgr8")
    raw.header.stamp.sec = 700
    expected = _pixels(_wait_output(probe, "eo/deblurred/image_raw", 700, lambda: probe.pubs["eo"].publish(raw)))
    assert probe.set_parameter("eo.transport", "compressed").successful
    try:
        assert probe.wait_for(lambda: probe.pubs["eo_compressed"].get_subscription_count() > 0, timeout=10)
        assert probe.pubs["eo"].get_subscription_count() == 0  # the raw topic is no longer read
        png = CompressedImage(format="bgr8; png compressed bgr8", data=cv2.imencode(".png", bgr)[1].tobytes())
        png.header.stamp.sec = 701
        out = _wait_output(probe, "eo/deblurred/image_raw", 701, lambda: probe.pubs["eo_compressed"].publish(png))
        assert out.encoding == "bgr8"
        np.testing.assert_array_equal(_pixels(out), expected)  # lossless: the same pixels, the same output
        jpeg = CompressedImage(format="jpeg", data=cv2.imencode(".jpg", bgr)[1].tobytes())
        jpeg.header.stamp.sec = 702
        out = _wait_output(probe, "eo/deblurred/image_raw", 702, lambda: probe.pubs["eo_compressed"].publish(jpeg))
        decoded = array_to_image_msg(cv2.imdecode(np.frombuffer(jpeg.data, np.uint8), cv2.IMREAD_COLOR), "bgr8")
        decoded.header.stamp.sec = 703
        assert probe.set_parameter("eo.transport", "raw").successful
        assert probe.wait_for(lambda: probe.pubs["eo"].get_subscription_count() > 0, timeout=10)
        reference = _wait_output(probe, "eo/deblurred/image_raw", 703, lambda: probe.pubs["eo"].publish(decoded))
        np.testing.assert_array_equal(_pixels(out), _pixels(reference))
    finally:
        probe.set_parameter("eo.transport", "raw")


def test_output_camera_info_is_the_image_topics_sibling(probe):
    """A CameraSubscriber pairs <base>/image_raw with <base>/camera_info: each output's sibling describes it."""
    from sensor_msgs.msg import CameraInfo

    info = CameraInfo()
    info.width, info.height = 32, 24
    info.k = [40.0, 0.0, 16.0, 0.0, 41.0, 12.0, 0.0, 0.0, 1.0]
    info.p = [40.0, 0.0, 16.0, 0.0, 0.0, 41.0, 12.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.header.stamp.sec, info.header.stamp.nanosec = 800, 1234
    assert probe.set_parameter("eo.task", "both").successful
    try:
        frame = _frame("rgb8", 24, 32, 13, 800, "eo_optical")
        for output in ("deblurred", "super_resolved"):
            image = _wait_output(
                probe,
                f"eo/{output}/image_raw",
                800,
                lambda: (probe.pubs["eo_info"].publish(info), probe.pubs["eo"].publish(frame)),
            )
            sibling = f"eo/{output}/image_raw".rsplit("/", 1)[0] + "/camera_info"  # image_transport's rule
            paired = _wait_output(probe, sibling, 800, lambda: probe.pubs["eo"].publish(frame))
            assert (paired.width, paired.height) == (image.width, image.height)
            assert paired.header.frame_id == image.header.frame_id == "eo_optical"
        deblurred_info = next(m for m in probe.messages("eo/deblurred/camera_info") if m.header.stamp.sec == 800)
        assert list(deblurred_info.k) == list(info.k)
    finally:
        probe.set_parameter("eo.task", "deblur")


def test_cameras_are_enabled_and_disabled_at_runtime(probe):
    assert probe.set_parameter("ir.enabled", False).successful
    try:
        assert probe.wait_for(lambda: probe.pubs["ir"].get_subscription_count() == 0, timeout=10)
        assert probe.wait_for(lambda: probe.node.count_publishers("/ir/super_resolved/image_raw") == 0, timeout=10)
    finally:
        assert probe.set_parameter("ir.enabled", True).successful
    assert probe.wait_for(lambda: probe.pubs["ir"].get_subscription_count() > 0, timeout=10)
    frame = _frame("mono8", 12, 20, 14, 900)
    _wait_output(probe, "ir/super_resolved/image_raw", 900, lambda: probe.pubs["ir"].publish(frame))


def test_setting_a_camera_parameter_to_its_value_leaves_its_topics_alone(probe, node_process):
    log = node_process[1]
    reopened = log.read_text().count("ir: enabled")
    for name, value in (("ir.enabled", True), ("ir.transport", "raw")):
        assert probe.set_parameter(name, value).successful
    time.sleep(1.0)
    assert log.read_text().count("ir: enabled") == reopened  # no close-and-reopen of the camera's topics
    assert probe.set_parameter("ir.transport", "compressed").successful  # a real change still reopens them
    assert probe.wait_for(lambda: log.read_text().count("ir: enabled") == reopened + 1, timeout=10)
    assert probe.set_parameter("ir.transport", "raw").successful
    assert probe.wait_for(lambda: probe.pubs["ir"].get_subscription_count() > 0, timeout=10)


def test_library_logging_reaches_the_ros_logger(node_process):
    log = Path(node_process[1]).read_text()
    assert "[enhance_node]: precision fp16 is not used on CPU" in log  # logged by inference.backends
