"""Cameras as data: any number of named cameras in one node (one model), typed settings snapshots."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from srdb_ros.inference import ProcessingOptions
from srdb_ros.ros.params import ParameterError, node_specs, params_yaml
from srdb_ros.ros.settings import settings_from

FOUR = ["front", "left", "rear", "thermal"]


def _changed(value, choices):
    """A valid value of the same type as ``value`` that differs from it."""
    if choices:
        return next(c for c in choices if c != value)
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, list):
        return [*value, "extra"]
    return value + "x"


def test_every_parameter_lands_in_the_settings_snapshot():
    specs = node_specs({"cameras": FOUR, "thermal.domain": "ir"})
    values = {name: spec.default for name, spec in specs.items()} | {"cameras": FOUR}
    base = settings_from(values, specs)
    for name in specs:
        if name == "cameras":
            continue
        assert settings_from(values | {name: _changed(values[name], specs[name].choices)}, specs) != base, name
    assert [c.name for c in base.cameras] == FOUR
    assert base.camera("thermal").domain == "ir" and base.camera("thermal").task == "sr"
    assert base.camera("front").task == "deblur"
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.tile_size = 64
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.processing.tile_size = 64
    assert base.processing == ProcessingOptions(base.agc, base.tile_size, base.tile_overlap)


def test_todays_two_camera_table_is_unchanged_and_bad_camera_lists_are_refused():
    default = node_specs()
    assert [n for n in default if n.startswith(("eo.", "ir."))] == [
        f"{cam}.{leaf}"
        for cam in ("eo", "ir")
        for leaf in ("domain", "enabled", "task", "transport", "compressed_outputs", "min_blur_px")
    ]
    assert default["eo.task"].default == "deblur" and default["ir.task"].default == "sr"
    assert "cameras: [eo, ir]" in params_yaml()
    for cameras, says in [
        (["front", "front"], "names 'front' twice"),
        ([], "at least one"),
        (["Front"], "is not a name"),
        (["agc"], "taken by the node's own parameters"),
        (["blur"], "taken by the node's own parameters"),
    ]:
        with pytest.raises(ParameterError, match=says):
            node_specs({"cameras": cameras})
    with pytest.raises(ParameterError, match="thermal.domain must be one of"):
        node_specs({"cameras": ["thermal"], "thermal.domain": "lwir"})


@pytest.mark.ros
@pytest.mark.slow
def test_four_cameras_answer_in_one_node_with_eo_frames_batched(tmp_path, student_weights):
    pytest.importorskip("rclpy", reason="the ROS 2 Python runtime (ros-jazzy-rclpy wheels) is not installed")
    from ros_probe import RosProbe, stop_process
    from sensor_msgs.msg import Image

    from srdb_ros.ros.conversions import array_to_image_msg
    from srdb_ros.ros.launcher import start_node

    args = ["-p", "backend:=torch", "-p", "device:=cpu", "-p", f"weights_path:={student_weights}"]
    args += ["-p", f"cameras:=[{','.join(FOUR)}]", "-p", "thermal.domain:=ir", "-p", "diagnostics.period:=0.3"]
    args += ["-p", "front.min_blur_px:=0.0", "-p", "left.min_blur_px:=0.0", "-p", "rear.min_blur_px:=0.0"]
    proc = start_node(ros_args=args, log_path=tmp_path / "node.log")
    probe = RosProbe("srdb_cameras_probe", outputs=False)
    outputs = {cam: f"{cam}/deblurred/image_raw" for cam in FOUR[:3]} | {"thermal": "thermal/super_resolved/image_raw"}
    from rclpy.qos import qos_profile_sensor_data

    pubs = {cam: probe.node.create_publisher(Image, f"{cam}/image_raw", qos_profile_sensor_data) for cam in FOUR}
    for topic in outputs.values():
        probe.subscribe(topic, Image)
    rng = np.random.default_rng(0)
    frames = {}
    for i, cam in enumerate(FOUR):
        frames[cam] = array_to_image_msg(rng.integers(0, 255, (32, 48, 3), np.uint8), "rgb8")
        frames[cam].header.stamp.sec, frames[cam].header.frame_id = 100 + i, cam

    def publish_all():
        for cam in FOUR:
            pubs[cam].publish(frames[cam])

    def status(camera):
        found = [s for a in probe.messages("/diagnostics") for s in a.status if s.name.endswith(f": {camera}")]
        return {kv.key: kv.value for kv in found[-1].values} if found else {}

    try:
        answered = probe.wait_for(
            lambda: all(
                any(m.header.stamp.sec == frames[cam].header.stamp.sec for m in probe.messages(topic))
                for cam, topic in outputs.items()
            ),
            republish=publish_all,
            timeout=120,
        )
        assert answered, (tmp_path / "node.log").read_text()[-3000:]
        thermal = probe.messages(outputs["thermal"])[-1]
        assert (thermal.height, thermal.width, thermal.header.frame_id) == (128, 192, "thermal")
        assert probe.wait_for(lambda: int(status("front").get("batch size max", "0")) >= 2, 60, publish_all)
        assert status("thermal")["domain"] == "ir" and status("thermal")["task"] == "sr"
        assert status("front")["domain"] == "eo" and status("front")["task"] == "deblur"
        log = (tmp_path / "node.log").read_text()
        assert log.count("configured: backend") == 1 and proc.poll() is None
    finally:
        probe.close()
        stop_process(proc)


@pytest.mark.ros
@pytest.mark.slow
def test_a_duplicate_camera_name_is_one_line_and_exit_2(tmp_path, student_weights):
    pytest.importorskip("rclpy", reason="the ROS 2 Python runtime (ros-jazzy-rclpy wheels) is not installed")
    from ros_probe import exit_code

    from srdb_ros.ros.launcher import start_node

    code = exit_code(start_node(ros_args=["-p", "cameras:=[front,front]"], log_path=tmp_path / "node.log"), 60)
    log = (tmp_path / "node.log").read_text()
    assert code == 2 and "cameras names 'front' twice" in log and "Traceback" not in log, log


def test_a_launch_ros_parameter_file_with_a_camera_list_passes_the_file_check(tmp_path):
    """launch_ros writes list parameters as ``!!python/tuple`` sequences, which rcl reads as plain lists."""
    import yaml

    from srdb_ros.ros.params import check_params_files

    written = tmp_path / "launch_params_x"
    written.write_text(yaml.dump({"/**": {"ros__parameters": {"cameras": ("eo", "thermal")}}}))
    assert "!!python/tuple" in written.read_text()
    check_params_files(["enhance_node", "--ros-args", "--params-file", str(written)])
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [1, 2\n")
    with pytest.raises(ParameterError, match="not valid YAML"):
        check_params_files(["enhance_node", "--ros-args", "--params-file", str(broken)])
