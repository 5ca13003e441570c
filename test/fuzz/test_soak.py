"""Issue 19: `srdb soak` overloads a real node process and reports memory, drops and latency per interval."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from srdb_ros.evaluation.soak import Tally, measure_pace


def test_pace_is_timed_from_the_first_answer():
    """A node that takes 1.5 s to warm up and then answers a pair every 50 ms answers about 20 pairs/s, not the
    1 / 1.5 s that a clock started at the first request would give within a 1 s calibration."""
    tally = Tally()
    sent = [0]

    def send_pair() -> list[tuple[str, int]]:
        sent[0] += 1
        keys = [("eo", sent[0]), ("ir", sent[0])]
        with tally.lock:
            tally.sent.update(dict.fromkeys(keys, 0.0))

        def answer() -> None:
            with tally.lock:
                for key in keys:
                    tally.sent.pop(key)

        threading.Timer(1.5 if sent[0] == 1 else 0.05, answer).start()
        return keys

    pace = measure_pace(send_pair, tally, seconds=1.0, log=Path("node.log"))
    assert sent[0] > 10
    assert 10 < pace <= 20


@pytest.mark.ros
@pytest.mark.slow
def test_soak_reports_rows_that_account_for_every_frame(student_weights, tmp_path):
    import json

    pytest.importorskip("rclpy", reason="the ROS 2 Python runtime (ros-jazzy-rclpy wheels) is not installed")
    from srdb_ros.evaluation.soak import SoakOptions, run_soak

    printed: list[str] = []
    opts = SoakOptions(
        minutes=0.15,
        overload=3.0,
        width=64,
        height=48,
        report_every=3.0,
        calibrate_seconds=2.0,
        out=str(tmp_path / "soak.json"),
        ros_args=("-p", "backend:=torch", "-p", "device:=cpu", "-p", f"weights_path:={student_weights}"),
    )
    rows = run_soak(opts, print_row=printed.append)
    assert len(rows) >= 3 and rows[-1]["scope"] == "whole run"
    assert any("pairs/s" in line for line in printed) and any(line.lstrip().startswith("t (s)") for line in printed)
    final = rows[-1]
    assert final["answered"] > 0 and final["rss_mb"] > 50
    assert final["node_dropped"] > 0  # 3x its capacity: the node drops, it does not queue
    assert final["answered"] + final["node_dropped"] <= final["sent"]
    assert final["node_failed"] == 0
    assert final["latency_ms"]["p50"] <= final["latency_ms"]["p95"] <= final["latency_ms"]["max"]
    assert json.loads((tmp_path / "soak.json").read_text())["rows"] == json.loads(json.dumps(rows))
