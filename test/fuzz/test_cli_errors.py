"""Issue 19: every CLI error a careless operator can cause is one line on stderr and exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.slow  # each case runs srdb in a subprocess

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"


def _srdb(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "srdb_ros.cli", *map(str, args)], capture_output=True, text=True, timeout=600, cwd=cwd
    )


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    root = tmp_path_factory.mktemp("broken")
    (root / "empty").mkdir()
    (root / "tiny_ir").mkdir()
    cv2.imwrite(str(root / "tiny_ir" / "t.png"), np.zeros((3, 3), np.uint8))
    good = root / "good_bag"
    assert _srdb("make-bag", "--eo", SAMPLES / "eo", "--max-frames", "1", "--output", good).returncode == 0
    mcap = next(good.glob("*.mcap"))
    truncated = root / "truncated_bag"
    truncated.mkdir()
    (truncated / "metadata.yaml").write_bytes((good / "metadata.yaml").read_bytes())
    (truncated / mcap.name).write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 3])
    random = root / "random_bag"
    random.mkdir()
    (random / "metadata.yaml").write_bytes((good / "metadata.yaml").read_bytes())
    (random / mcap.name).write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    corrupt_meta = root / "corrupt_meta_bag"
    corrupt_meta.mkdir()
    (corrupt_meta / "metadata.yaml").write_text("rosbag2_bagfile_information: [unclosed")
    (root / "weights_dir.safetensors").mkdir()
    (root / "garbage.safetensors").write_bytes(b"\x00" * 248)
    return root


CASES = {
    "score on an empty folder": ("score", "--task", "deblur", "--pairs", "{root}/empty"),
    "make-bag from an empty folder": ("make-bag", "--eo", "{root}/empty", "--output", "{root}/out1"),
    "make-bag into an existing folder": ("make-bag", "--eo", str(SAMPLES / "eo"), "--output", "{root}/empty"),
    "make-bag at 0 fps": ("make-bag", "--eo", str(SAMPLES / "eo"), "--fps", "0", "--output", "{root}/out2"),
    "make-bag with a 3x3 IR frame": ("make-bag", "--ir", "{root}/tiny_ir", "--output", "{root}/out3"),
    "evaluate a truncated MCAP": ("evaluate", "{root}/truncated_bag", "--out", "{root}/ev1"),
    "evaluate a random MCAP": ("evaluate", "{root}/random_bag", "--out", "{root}/ev2"),
    "evaluate with corrupt metadata": ("evaluate", "{root}/corrupt_meta_bag", "--out", "{root}/ev3"),
    "score a weights folder": ("score", "--task", "sr", "--model", "{root}/weights_dir.safetensors", "--hr", "x"),
    "score garbage weights": ("score", "--task", "sr", "--model", "{root}/garbage.safetensors", "--hr", "x"),
    "score /dev/zero": ("score", "--task", "sr", "--model", "/dev/zero", "--hr", "x"),
    "train with a typo in the config": ("train", "--config", "{root}/typo.yaml", "--output", "{root}/run"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_error_is_one_line_and_exit_2(broken, case):
    if case == "train with a typo in the config":
        (broken / "typo.yaml").write_text((ROOT / "config" / "train_smoke.yaml").read_text() + "stpes: 3\n")
    args = [a.format(root=broken) for a in CASES[case]]
    out = _srdb(*args, cwd=broken)
    lines = [line for line in out.stderr.splitlines() if line.strip() and not line.startswith(("INFO", "WARNING"))]
    assert out.returncode == 2, (case, out.stderr[-1500:])
    assert "Traceback" not in out.stderr, (case, out.stderr[-1500:])
    assert len(lines) == 1 and lines[0].startswith(f"srdb {args[0]}: error: "), (case, lines)
    if "weights folder" in case or "/dev/zero" in case:
        assert "not a regular file" in lines[0]
    for name in ("out1", "out2", "out3"):
        assert not (broken / name).exists()  # nothing that looks like a finished bag
