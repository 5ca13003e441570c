"""Issue 32: parameter files as ROS users share them, and a node status that is always on /diagnostics."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

pytest.importorskip("rclpy", reason="the ROS 2 Python runtime (ros-jazzy-rclpy wheels) is not installed")
pytestmark = [pytest.mark.ros, pytest.mark.slow]

from ros_probe import RosProbe, exit_code, stop_process  # noqa: E402

from srdb_ros.ros.conversions import array_to_image_msg  # noqa: E402
from srdb_ros.ros.launcher import start_node  # noqa: E402


def _params_file(path, values: dict):
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": values}}))
    return path


def _start(tmp_path, weights, *extra: str):
    args = ["-p", "backend:=torch", "-p", "device:=cpu", "-p", f"weights_path:={weights}", *extra]
    return start_node(ros_args=args, log_path=tmp_path / "node.log")


def test_a_shared_file_with_other_nodes_keys_is_warned_about_and_the_node_runs(tmp_path, student_weights):
    shared = _params_file(
        tmp_path / "robot.yaml",
        {"vehicle_frame": "base_link", "robot.max_speed": 2.5, "eo.task": "both", "ir.enabled": False},
    )
    proc = _start(tmp_path, student_weights, "--params-file", str(shared), "-p", "diagnostics.period:=0.3")
    probe = RosProbe("srdb_params_probe")
    try:
        assert probe.wait_for_node(90), (tmp_path / "node.log").read_text()
        log = (tmp_path / "node.log").read_text()
        warning = [line for line in log.splitlines() if "does not have" in line]
        assert len(warning) == 1 and "vehicle_frame" in warning[0] and "robot.max_speed" in warning[0]
        assert proc.poll() is None
    finally:
        probe.close()
        stop_process(proc)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ({"eo.taks": "sr"}, "unknown parameter 'eo.taks'; did you mean eo.task?"),
        (None, "no such file or directory"),
        ("a: [1, 2\n", "not valid YAML at line 2"),
        ("- just\n- a list\n", "expected '<node name or /**>: ros__parameters"),
    ],
)
def test_a_typo_missing_or_malformed_file_gives_one_line_and_exit_2(tmp_path, student_weights, content, says):
    path = tmp_path / "params.yaml"
    if isinstance(content, dict):
        _params_file(path, content)
    elif content is not None:
        path.write_text(content)
    code = exit_code(_start(tmp_path, student_weights, "--params-file", str(path)))
    log = (tmp_path / "node.log").read_text()
    assert code == 2 and says in log, log
    assert "Traceback" not in log and len([line for line in log.splitlines() if "cannot start" in line]) == 1


def test_the_node_status_is_on_diagnostics_with_both_cameras_disabled(tmp_path, student_weights):
    proc = _start(
        tmp_path, student_weights, "-p", "eo.enabled:=false", "-p", "ir.enabled:=false", "-p", "diagnostics.period:=0.3"
    )
    probe = RosProbe("srdb_status_probe", outputs=False)
    try:

        def status():
            found = [
                s for a in probe.messages("/diagnostics") for s in a.status if s.name.endswith("enhance_node: node")
            ]
            return found[-1] if found else None

        assert probe.wait_for(lambda: status() is not None, timeout=90), (tmp_path / "node.log").read_text()
        values = {kv.key: kv.value for kv in status().values}
        assert status().level == bytes([0]) and values["state"] == "active"
        assert values["device"] == "cpu" and "torch" in values["backend"]
        assert str(student_weights) in values["model"] and "sha256" in values["model"]
        cameras = [s for a in probe.messages("/diagnostics") for s in a.status if not s.name.endswith(": node")]
        assert not cameras  # disabled cameras report nothing; the node still does
    finally:
        probe.close()
        stop_process(proc)


def test_an_unwritable_cache_warns_once_and_the_onnx_node_runs(tmp_path, student_weights):
    blocked = tmp_path / "not_a_folder"
    blocked.write_text("a file where the cache would go")
    proc = _start(tmp_path, student_weights, "-p", "backend:=onnxruntime", "-p", f"cache_dir:={blocked}")
    probe = RosProbe("srdb_cache_probe")
    try:
        assert probe.wait_for_node(120), (tmp_path / "node.log").read_text()
        frame = array_to_image_msg(np.zeros((16, 24, 3), np.uint8), "rgb8")
        frame.header.stamp.sec = 5
        assert probe.wait_for(
            lambda: any(m.header.stamp.sec == 5 for m in probe.messages("eo/deblurred/image_raw")),
            republish=lambda: probe.pubs["eo"].publish(frame),
            timeout=60,
        )
        log = (tmp_path / "node.log").read_text()
        assert len([line for line in log.splitlines() if "cannot be used" in line]) == 1, log
        assert blocked.read_text() == "a file where the cache would go"
    finally:
        probe.close()
        stop_process(proc)
