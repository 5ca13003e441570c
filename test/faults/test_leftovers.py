"""Leftovers of interrupted runs: SIGTERM during make-bag removes its staging folder; temporary files and staging
folders of runs that were killed (SIGKILL: no cleanup possible) are removed by the next run, never those of a
process that still runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from srdb_ros.cli import Terminated, main
from srdb_ros.core.files import atomic_output
from srdb_ros.evaluation import bags

ROOT = Path(__file__).resolve().parents[2]


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_a_killed_export_leaves_a_temp_file_that_the_next_write_removes(tmp_path):
    target = tmp_path / "cache" / "model-deblur.onnx"
    code = (
        "import os, sys\n"
        "from srdb_ros.core.files import atomic_output\n"
        "with atomic_output(sys.argv[1]) as tmp:\n"
        "    tmp.write_bytes(b'half an onnx')\n"
        "    os.kill(os.getpid(), 9)\n"
    )
    assert subprocess.run([sys.executable, "-c", code, str(target)]).returncode == -signal.SIGKILL
    leftovers = list(target.parent.glob(".model-deblur.onnx.*.tmp"))
    assert len(leftovers) == 1 and not target.exists()
    mine = target.parent / f".model-deblur.onnx.{os.getpid()}.inflight.tmp"  # a live writer's file stays
    mine.write_bytes(b"")
    with atomic_output(target) as tmp:
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole" and not leftovers[0].exists() and mine.exists()


def test_sigterm_during_make_bag_removes_the_staging_folder(tmp_path, monkeypatch, capsys):
    def interrupted(path, *args):
        Path(path).mkdir(parents=True)
        (Path(path) / "half.mcap").write_bytes(b"x" * 1024)
        raise Terminated(signal.SIGTERM)  # what SIGTERM raises in the middle of writing

    monkeypatch.setattr(bags, "_write_bag", interrupted)
    out = tmp_path / "bags" / "eval_bag"
    code = main(["make-bag", "--eo", str(ROOT / "samples" / "eo"), "--output", str(out)])
    assert code == 128 + signal.SIGTERM and "interrupted (SIGTERM)" in capsys.readouterr().err
    assert list((tmp_path / "bags").iterdir()) == []  # neither the bag nor a hidden staging folder


def test_sigterm_that_library_code_turns_into_another_error_still_exits_as_interrupted(tmp_path, monkeypatch, capsys):
    """C++ extensions (PyTorch's among them) can catch the exception SIGTERM raises and raise one of their own: the
    run still exits 128 + 15 with the one interrupted line, not as an error."""

    def converted(path, *args):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)  # the handler raises here
        except KeyboardInterrupt as exc:
            raise TypeError("could not determine the shape of object type 'torch.storage.UntypedStorage'") from exc
        raise AssertionError("SIGTERM did not interrupt the command")

    monkeypatch.setattr(bags, "_write_bag", converted)
    before = signal.getsignal(signal.SIGTERM)
    code = main(["make-bag", "--eo", str(ROOT / "samples" / "eo"), "--output", str(tmp_path / "eval_bag")])
    err = capsys.readouterr().err
    assert code == 128 + signal.SIGTERM and "interrupted (SIGTERM)" in err and "error" not in err
    assert signal.getsignal(signal.SIGTERM) is before and not (tmp_path / "eval_bag").exists()


def test_a_killed_make_bag_leaves_a_staging_folder_that_the_next_run_removes(tmp_path):
    stale = tmp_path / f".eval_bag.{_dead_pid()}.abc123"
    (stale / "bag").mkdir(parents=True)
    (stale / "bag" / "half.mcap").write_bytes(b"x" * 1024)
    info = bags.make_bag(ROOT / "samples" / "eo", None, tmp_path / "eval_bag", max_frames=1)
    assert info["frames"]["eo"] == 1 and not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval_bag"]
