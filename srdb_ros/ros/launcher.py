"""Start the enhance node without the ``ros2`` CLI: in this process (``srdb node``) or as a child process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .env import apply_to_current_process, ros_environment


def node_command(params_file: str | Path | None = None, ros_args: list[str] | None = None) -> list[str]:
    """argv that runs the node with this interpreter: ``python -m srdb_ros.ros.entry --ros-args ...``; without a
    parameter file the node's defaults apply (``config/enhance.yaml`` holds the same values)."""
    extra = list(ros_args or [])
    if extra[:1] == ["--ros-args"]:
        extra = extra[1:]
    files = ["--params-file", str(params_file)] if params_file else []
    return [sys.executable, "-m", "srdb_ros.ros.entry", "--ros-args", *files, *extra]


def start_node(
    params_file=None,
    ros_args=None,
    domain_id: int | None = None,
    log_path: str | Path | None = None,
    localhost: bool = True,
) -> subprocess.Popen:
    """Start the node as its own process (stdout/stderr to ``log_path`` if given)."""
    out = open(log_path, "w") if log_path else None  # noqa: SIM115 - handed to the child process
    return subprocess.Popen(
        node_command(params_file, ros_args),
        env=ros_environment(domain_id, localhost),
        stdout=out,
        stderr=subprocess.STDOUT if out else None,
    )


def run_node(params_file: str | Path | None = None, ros_args: list[str] | None = None, localhost: bool = True) -> int:
    """``srdb node``: the node in this process, with the environment the ROS wheels need."""
    from .enhance_node import main as node_main

    apply_to_current_process(localhost=localhost)
    return node_main(node_command(params_file, ros_args)[2:])
