"""Issue 3: the package builds the ROS way (colcon) and installs its data where ROS tools look."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _copy_source(dst: Path) -> None:
    """What a clone holds: tracked files plus untracked ones git does not ignore (no venvs, runs or build output)."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        src = ROOT / name
        if src.is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)


@pytest.fixture(scope="module")
def colcon_install(tmp_path_factory) -> Path:
    colcon = shutil.which("colcon", path=str(Path(sys.executable).parent))
    if colcon is None:
        pytest.skip("colcon is not installed in this environment (pip install colcon-common-extensions)")
    ws = tmp_path_factory.mktemp("ws")
    _copy_source(ws / "src" / "srdb_ros")
    result = subprocess.run(  # no --symlink-install: the package must work from the installed copy
        [colcon, "build", "--base-paths", "src", "--build-base", "build", "--install-base", "install"],
        cwd=ws,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return ws / "install"


@pytest.mark.slow
def test_colcon_installs_launch_config_models(colcon_install):
    share = colcon_install / "srdb_ros" / "share" / "srdb_ros"
    assert (share / "package.xml").is_file()
    assert (share / "launch" / "enhance.launch.py").is_file()
    assert (share / "config" / "enhance.yaml").is_file()
    assert (share / "config" / "enhance.schema.json").is_file()
    assert (share / "models" / "srdb_student.safetensors").is_file()
    assert (share / "models" / "README.md").is_file()
    marker = colcon_install / "srdb_ros" / "share" / "ament_index" / "resource_index" / "packages" / "srdb_ros"
    assert marker.is_file()
    lib = colcon_install / "srdb_ros" / "lib" / "srdb_ros"
    assert (lib / "enhance_node").is_file() and (lib / "srdb").is_file()


@pytest.mark.slow
def test_installed_package_finds_its_share_through_ament_index(colcon_install, tmp_path):
    prefix = colcon_install / "srdb_ros"
    site = next(prefix.glob("lib/python3*/site-packages"))
    from srdb_ros.ros.env import ros_environment

    env = ros_environment(base={"PATH": "/usr/bin:/bin", "AMENT_PREFIX_PATH": str(prefix), "PYTHONPATH": str(site)})
    code = (
        "from srdb_ros.resources import share_dir, bundled_model; print(share_dir()); print(bundled_model().is_file())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    share, exists = out.stdout.split()
    assert Path(share) == prefix / "share" / "srdb_ros"
    assert exists == "True"


def _send_frame_and_wait(namespace: str, timeout: float = 120.0):
    """From this process: publish a small EO frame to ``<ns>/eo/image_raw`` until ``<ns>/eo/deblurred`` answers."""
    import rclpy
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from srdb_ros.ros.conversions import array_to_image_msg

    if not rclpy.ok():
        rclpy.init()
    node = rclpy.create_node("srdb_install_probe")
    got = []
    node.create_subscription(Image, f"{namespace}/eo/deblurred/image_raw", got.append, QoSProfile(depth=5))
    pub = node.create_publisher(Image, f"{namespace}/eo/image_raw", qos_profile_sensor_data)
    msg = array_to_image_msg(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8), "rgb8")
    msg.header.frame_id = "installed_cam"
    deadline = time.monotonic() + timeout
    while not got and time.monotonic() < deadline:
        pub.publish(msg)
        rclpy.spin_once(node, timeout_sec=0.5)
    node.destroy_node()
    return got[0] if got else None


@pytest.mark.ros
@pytest.mark.slow
def test_installed_enhance_node_answers_frames_from_another_process(colcon_install, tmp_path):
    pytest.importorskip("rclpy", reason="the ROS 2 Python runtime (ros-jazzy-rclpy wheels) is not installed")
    prefix = colcon_install / "srdb_ros"
    site = next(prefix.glob("lib/python3*/site-packages"))
    assert (site / "srdb_ros" / "ros" / "__init__.py").is_file()  # every sub-package is installed
    node = prefix / "lib" / "srdb_ros" / "enhance_node"
    assert "--ros-args" in subprocess.run([node, "--help"], capture_output=True, text=True, timeout=60).stdout
    log = tmp_path / "node.log"
    script = (
        f'source "{colcon_install}/setup.bash" && exec "{node}" --ros-args -r __ns:=/installed '
        "-p backend:=torch -p device:=cpu -p max_pixels:=40000"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AMENT_PREFIX_PATH")}
    with open(log, "w") as out:
        proc = subprocess.Popen(["bash", "-c", script], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        reply = _send_frame_and_wait("/installed")
        text = log.read_text()
        assert reply is not None, text
        assert (reply.height, reply.width, reply.encoding) == (48, 64, "rgb8")
        assert reply.header.frame_id == "installed_cam"
        assert (
            str(site)
            in subprocess.run(  # the node ran the installed copy, not the source tree
                [
                    "bash",
                    "-c",
                    f'source "{colcon_install}/setup.bash" && python3 -c "import srdb_ros; print(srdb_ros.__file__)"',
                ],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            ).stdout
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_colcon_test_runs_the_pytest_suite(colcon_install):
    colcon = shutil.which("colcon", path=str(Path(sys.executable).parent))
    ws = colcon_install.parent
    result = subprocess.run(
        [colcon, "test", "--base-paths", "src", "--packages-select", "srdb_ros", "--pytest-args", "-k", "test_blur"],
        cwd=ws,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = subprocess.run([colcon, "test-result", "--all"], cwd=ws, capture_output=True, text=True, timeout=60)
    tests = int(re.search(r"Summary: (\d+) tests?", summary.stdout).group(1))
    assert tests >= 5, summary.stdout  # the blur tests ran (before: 0 tests, reported as success)


@pytest.mark.slow
def test_wheel_installs_into_a_prefix_and_runs_srdb_demo(tmp_path):
    src = tmp_path / "src"
    _copy_source(src)
    pip = [sys.executable, "-m", "pip"]
    built = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("*.whl"))
    prefix = tmp_path / "prefix"
    installed = subprocess.run(
        [*pip, "install", "--no-deps", "--ignore-installed", "-q", "--prefix", str(prefix), str(wheel)],
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr
    site = next(prefix.glob("lib/python3*/site-packages"))
    assert (site / "srdb_ros" / "ros" / "__init__.py").is_file()
    share = prefix / "share" / "srdb_ros"
    for data in ("config/splits/eo_train.txt", "config/train_cpu.yaml", "samples/eo/astronaut.png", "package.xml"):
        assert (share / data).is_file(), data
    env = {k: v for k, v in os.environ.items() if k != "AMENT_PREFIX_PATH"}
    env["PYTHONPATH"] = str(site)
    where = subprocess.run(
        [sys.executable, "-c", "from srdb_ros.resources import share_dir; print(share_dir())"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert Path(where.stdout.strip()) == share, where.stderr  # found without AMENT_PREFIX_PATH
    srdb = prefix / "bin" / "srdb"
    demo = subprocess.run(
        [srdb, "demo", "--out", str(tmp_path / "demo"), "--frames", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-3000:]
    metrics = json.loads((tmp_path / "demo" / "report" / "metrics.json").read_text())
    assert metrics["run"]["mode"] == "lockstep"
    eo = metrics["results"]["eo/deblur"]
    assert eo["frames_out"] == eo["frames_in"] == 2 and eo["frames_unanswered"] == 0


def test_package_xml_is_format3_ament_python_with_run_dependencies():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.find("export/build_type").text == "ament_python"
    run = {e.text for e in root.findall("exec_depend")}
    for dep in (
        "rclpy",
        "sensor_msgs",
        "std_msgs",
        "diagnostic_msgs",
        "cv_bridge",
        "launch",
        "launch_ros",
        "python3-numpy",
        "python3-opencv",
        "python3-yaml",
    ):
        assert dep in run, dep
    tests_need = {"python3-pytest", "python3-jsonschema", "python3-catkin-pkg-modules", "python3-ruff-pip"}
    assert tests_need | {"python3-tensorboard-pip"} <= {e.text for e in root.findall("test_depend")}


# import name -> dependency key; keys checked against ros/rosdistro (rosdep/python.yaml, jazzy/distribution.yaml)
# at commit 8468e88. None: no rosdep key exists; docs/deployment.md says how to install it.
IMPORT_KEYS = {
    "torch": "python3-torch",
    "numpy": "python3-numpy",
    "cv2": "python3-opencv",
    "yaml": "python3-yaml",
    "tqdm": "python3-tqdm",
    "matplotlib": "python3-matplotlib",
    "PIL": "python3-pil",
    "onnxruntime": "python3-onnxruntime-pip",
    "rosbags": "python3-rosbags-pip",
    "rosbags.image": None,  # the rosbags-image distribution (the `rosbags.image` namespace package)
    "safetensors": None,
    "onnx": None,
    "tensorrt": None,
    **{
        ros: ros
        for ros in (
            "rclpy",
            "sensor_msgs",
            "std_msgs",
            "diagnostic_msgs",
            "geometry_msgs",
            "rcl_interfaces",
            "cv_bridge",
            "launch",
            "launch_ros",
            "ament_index_python",
        )
    },
}


def _distribution_module(name: str) -> str:
    """The table's key of an import: its top-level module, or ``rosbags.image`` (a separate distribution)."""
    return "rosbags.image" if name.startswith("rosbags.image") else name.split(".")[0]


def _third_party_imports() -> set[str]:
    import ast

    found = set()
    for path in [*ROOT.glob("srdb_ros/**/*.py"), *ROOT.glob("launch/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {_distribution_module(alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(_distribution_module(node.module))
    return {m for m in found if m not in sys.stdlib_module_names and m not in ("srdb_ros", "__future__")}


def test_package_xml_declares_every_runtime_import():
    run = {e.text for e in ET.parse(ROOT / "package.xml").getroot().findall("exec_depend")}
    ros_way = (ROOT / "docs" / "deployment.md").read_text()
    for module in sorted(_third_party_imports()):
        assert module in IMPORT_KEYS, f"{module} is imported but has no dependency key in this test's table"
        key = IMPORT_KEYS[module]
        if key is None:
            assert module.replace(".", "-") in ros_way.lower(), (
                f"{module}: no rosdep key, and docs/deployment.md omits it"
            )
        else:
            assert key in run, f"{module}: package.xml lacks <exec_depend>{key}</exec_depend>"
    assert "python3-safetensors" not in run  # not a rosdep key: rosdep install would fail


def test_parameter_files_schema_and_readme_table_are_generated_from_the_one_table():
    import jsonschema
    import yaml

    from srdb_ros.ros.params import PARAMS, generated_files

    stale = [str(path) for path, text in generated_files(ROOT).items() if path.read_text() != text]
    assert not stale, f"regenerate with `python -m srdb_ros.ros.params --write`: {stale}"
    config = yaml.safe_load((ROOT / "config" / "enhance.yaml").read_text())

    def flat(d, prefix=""):
        for k, v in d.items():
            yield from flat(v, f"{prefix}{k}.") if isinstance(v, dict) else [(f"{prefix}{k}", v)]

    assert dict(flat(config["/**"]["ros__parameters"])) == {p.name: p.default for p in PARAMS}
    schema = json.loads((ROOT / "config" / "enhance.schema.json").read_text())
    jsonschema.validate(config, schema)
    for bad in ({"eo": {"task": "denoise"}}, {"eo": {"taks": "sr"}}, {"tile_size": -5}, {"tile_size": 1.5}):
        broken = yaml.safe_load((ROOT / "config" / "enhance.yaml").read_text())
        broken["/**"]["ros__parameters"].update(bad)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)
    assert "`eo.task`" in (ROOT / "README.md").read_text()  # among the parameters people change most


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^(make \w+)$", readme, flags=re.M)
    assert "make test" in commands and "make demo" in commands
    ci = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert "make test" in ci
    assert "set -euo pipefail" in ci


@pytest.mark.slow
def test_cli_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "srdb_ros.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for command in ("info", "export", "build-engine", "bench", "node", "make-bag", "evaluate", "demo"):
        assert command in out.stdout, command


@pytest.mark.slow
def test_code_passes_the_linter():
    """ruff is a declared test dependency (package.xml python3-ruff-pip, setup.py extra 'test'): the lint runs
    wherever the tests do, from this interpreter's environment or the PATH."""
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is not installed: it is a test dependency (rosdep install, or pip install ruff)"
    out = subprocess.run(
        [ruff, "check", "srdb_ros", "test", "launch", "setup.py"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout
