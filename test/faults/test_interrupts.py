"""Interrupting `srdb evaluate` (Ctrl-C or SIGTERM, as `timeout` sends) stops the node process it started, writes
no report that could be read as the node's failure, and exits non-zero."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="the ROS 2 Python runtime (ros-jazzy-rclpy wheels) is not installed")

from srdb_ros.evaluation.bags import make_bag  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _interrupt_once_a_child_runs(
    args: list[str], sig: int, cwd: Path, settle: float = 1.0
) -> tuple[subprocess.Popen, list[int], str]:
    """Start ``srdb ARGS``, wait until it has started a child process (its node) and ``settle`` s more, send
    ``sig``; returns the process, the children it had and its stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "srdb_ros.cli", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a test run started in the background (`make test &`) passes SIGINT on as ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    children: list[int] = []
    while time.monotonic() < deadline and not children and proc.poll() is None:
        time.sleep(0.5)
        children = _children(proc.pid)
    assert children, f"srdb {args[0]} never started its node"
    time.sleep(settle)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=90)
    return proc, children, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_evaluate_stops_its_node_and_reports_nothing(tmp_path, sig):
    make_bag(ROOT / "samples" / "eo", ROOT / "samples" / "ir", tmp_path / "bag", fps=5, max_frames=3)
    out = tmp_path / "report"
    # evaluate is waiting for the node to start (that takes seconds): interrupt it there
    proc, children, err = _interrupt_once_a_child_runs(
        ["evaluate", str(tmp_path / "bag"), "--out", str(out)], sig, tmp_path, settle=0.5
    )
    assert proc.returncode == 128 + sig, err
    assert "interrupted" in err
    assert not any(_alive(pid) for pid in children), "the node process outlived evaluate"
    assert not (out / "report.md").exists() and not (out / "metrics.json").exists()
    assert (out / "node.log").is_file()  # what the node said is kept for the user


@pytest.mark.parametrize("command", ["soak", "demo"])
def test_an_interrupted_soak_or_demo_stops_its_node_and_exits_non_zero(tmp_path, command):
    args = {
        "soak": ["soak", "--minutes", "5", "--width", "64", "--height", "48", "--out", str(tmp_path / "soak.json")],
        "demo": ["demo", "--out", str(tmp_path / "demo"), "--frames", "2"],
    }[command]
    proc, children, err = _interrupt_once_a_child_runs(args, signal.SIGTERM, tmp_path)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "interrupted" in err
    assert not any(_alive(pid) for pid in children), f"the node process outlived srdb {command}"
    assert not (tmp_path / "demo" / "report.md").exists()


def test_an_interrupted_training_run_exits_non_zero_and_keeps_what_it_finished(tmp_path):
    """SIGTERM mid-run: exit 128 + 15, one line, no temporary file; finished stages stay for --resume (which the
    kill -9 test in test_training.py runs)."""
    out = tmp_path / "run"
    args = [sys.executable, "-m", "srdb_ros.cli", "train", "--config", str(ROOT / "config" / "train_smoke.yaml")]
    proc = subprocess.Popen(
        [*args, "--output", str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out / "init" / "done.json").exists() and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "interrupted (SIGTERM)" in err
    assert not list(out.rglob("*.tmp*")), "a temporary file outlived the interrupted run"
    assert (out / "init" / "done.json").is_file() and not (out / "export" / "done.json").exists()
