"""Issue 3: the package builds the ROS way (colcon) and installs its data where ROS tools look."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".git", ".venv", "build", "install", "log", "__pycache__", ".pytest_cache", "runs"}


def _copy_source(dst: Path) -> None:
    shutil.copytree(ROOT, dst, ignore=lambda d, names: [n for n in names if n in SKIP_DIRS or n.endswith(".egg-info")])


@pytest.fixture(scope="module")
def colcon_install(tmp_path_factory) -> Path:
    colcon = shutil.which("colcon", path=str(Path(sys.executable).parent))
    if colcon is None:
        pytest.skip("colcon is not installed in this environment (pip install colcon-common-extensions)")
    ws = tmp_path_factory.mktemp("ws")
    _copy_source(ws / "src" / "srdb_ros")
    result = subprocess.run(
        [colcon, "build", "--base-paths", "src", "--build-base", "build", "--install-base", "install"],
        cwd=ws,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return ws / "install"


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
    assert "python3-pytest" in {e.text for e in root.findall("test_depend")}


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


def test_cli_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "srdb_ros.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for command in ("info", "export", "build-engine", "bench", "node", "make-bag", "evaluate", "demo"):
        assert command in out.stdout, command


def test_code_passes_the_linter():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff is None:
        pytest.skip("ruff is not installed in this environment (pip install ruff)")
    out = subprocess.run(
        [ruff, "check", "srdb_ros", "test", "launch", "setup.py"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout
