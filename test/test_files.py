"""Issue 19: outputs are written under unique temporary names and renamed, never through a planted file."""

from __future__ import annotations

import subprocess
import sys

import pytest

from srdb_ros.core.files import atomic_output


def test_atomic_output_never_writes_through_a_planted_name(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (tmp_path / "x.onnx.tmp").symlink_to(victim)  # the fixed name older versions used
    with atomic_output(tmp_path / "x.onnx") as tmp:
        assert not tmp.is_symlink() and tmp.parent == tmp_path
        tmp.write_text("new")
    assert victim.read_text() == "keep" and (tmp_path / "x.onnx").read_text() == "new"
    with pytest.raises(RuntimeError), atomic_output(tmp_path / "y.bin") as tmp:
        tmp.write_text("partial")
        raise RuntimeError("interrupted")
    assert not (tmp_path / "y.bin").exists()  # a failed write leaves nothing that looks complete
    assert sorted(p.name for p in tmp_path.iterdir()) == ["victim.txt", "x.onnx", "x.onnx.tmp"]


def test_srdb_export_leaves_a_planted_symlink_alone(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (tmp_path / "model.onnx.tmp").symlink_to(victim)
    out = subprocess.run(
        [sys.executable, "-m", "srdb_ros.cli", "export", "--task", "sr", "--output", str(tmp_path / "model.onnx")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert victim.read_text() == "keep" and (tmp_path / "model.onnx").stat().st_size > 100_000
