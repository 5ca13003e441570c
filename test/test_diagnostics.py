"""Issue 19: bounded diagnostics state and text, rates that do not saturate, errors held for a window."""

from __future__ import annotations

import time

import pytest

from srdb_ros.ros.diagnostics import TEXT_LIMIT, CameraStats, clip_text


def test_input_rate_estimate_does_not_saturate_on_a_fast_stream(monkeypatch):
    from srdb_ros.ros import diagnostics

    clock = [1000.0]
    monkeypatch.setattr(diagnostics.time, "monotonic", lambda: clock[0])
    stats = CameraStats()
    for _ in range(5000):  # 1 kHz for 5 s: five times the 1000-entry history
        clock[0] += 0.001
        stats.on_receive(False)
    assert stats.snapshot()["input_rate_hz"] == pytest.approx(1000, rel=0.01)  # the old estimate said 200
    slow = CameraStats()
    for _ in range(50):  # 10 Hz: the history covers the whole horizon
        clock[0] += 0.1
        slow.on_receive(False)
    assert slow.snapshot()["input_rate_hz"] == pytest.approx(10, rel=0.05)


def test_errors_are_held_and_counters_never_reset():
    stats = CameraStats()
    stats.on_error("bad frame: " + "x" * 10_000)
    first = stats.snapshot(error_hold=0.3)
    assert first["error_active"] and first["errors"] == 1 and len(first["last_error"]) <= TEXT_LIMIT
    assert stats.snapshot(error_hold=0.3)["error_active"]  # a second diagnostics message still shows it
    time.sleep(0.35)
    later = stats.snapshot(error_hold=0.3)
    assert not later["error_active"] and later["errors"] == 1


def test_diagnostic_status_text_is_capped():
    pytest.importorskip("diagnostic_msgs", reason="the ROS 2 message wheels are not installed")
    from srdb_ros.ros.diagnostics import camera_status

    stats = CameraStats()
    stats.on_error("unsupported encoding " + "e" * 10_000)
    status = camera_status("eo", "/enhance_node", "hw", stats.snapshot(), "torch", "deblur")
    assert status.level == b"\x02" and len(status.message) <= TEXT_LIMIT
    assert len(clip_text("a" * 1000)) == TEXT_LIMIT


def test_status_level_follows_state_staleness_stamp_age_and_subscribers():
    pytest.importorskip("diagnostic_msgs", reason="the ROS 2 message wheels are not installed")
    from srdb_ros.ros.diagnostics import camera_status

    def status(stats, **kw):
        s = camera_status("eo", "/enhance_node", "hw", stats.snapshot(), "torch", "deblur", **kw)
        return s.level[0], s.message

    quiet = CameraStats()
    assert status(quiet, state="inactive") == (0, "inactive: not processing")
    assert status(quiet, stale_after=2.0, active_for=5.0)[0] == 1  # nothing ever arrived
    assert status(quiet, stale_after=2.0, active_for=1.0) == (0, "no frames received yet")
    fresh = CameraStats()
    fresh.on_receive(False, stamp_age_s=0.01)
    assert status(fresh, stale_after=2.0, active_for=5.0, max_stamp_age=0.5) == (0, "ok")
    old = CameraStats()
    old.on_receive(False, stamp_age_s=3.0)
    level, message = status(old, max_stamp_age=0.5, active_for=5.0)
    assert level == 1 and message.startswith("input stamps are 3.00 s old")
    assert status(fresh, subscribers=0, active_for=5.0) == (0, "idle: no subscribers")
    fresh.on_idle()
    assert fresh.snapshot()["idle"] == 1
