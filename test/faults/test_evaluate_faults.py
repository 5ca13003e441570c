"""Fault injection for `srdb evaluate`: everything that can be checked is checked before the node starts or the
replay begins, in seconds, with one line naming what is wrong, and nothing of an earlier run is touched."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from srdb_ros.cli import main
from srdb_ros.evaluation.bags import TYPESTORE, BagWriter, image_message

ROOT = Path(__file__).resolve().parents[2]


def _bag(path: Path, foreign: bool = False) -> Path:
    frame = np.zeros((8, 8, 3), np.uint8)
    with BagWriter(path) as bag:
        bag.write("/ir/image_raw", image_message(frame[..., 0], "mono8", 10**9, "ir"), 10**9)
        if foreign:
            bag.write("/eo/image_raw", TYPESTORE.types["std_msgs/msg/String"](data="not an image"), 10**9)
        else:
            bag.write("/eo/image_raw", image_message(frame, "rgb8", 10**9, "eo"), 10**9)
    return path


def _evaluate(*args: str) -> int:
    return main(["evaluate", *args])


def test_an_existing_report_folder_is_refused_before_the_replay(tmp_path, capsys):
    out = tmp_path / "report"
    out.mkdir()
    (out / "metrics.json").write_text('{"from": "an earlier run"}')
    (out / "report.md").write_text("# earlier\n")
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir()}
    assert _evaluate(str(_bag(tmp_path / "bag")), "--out", str(out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds files" in err[0]
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir()} == before  # no node.log


def test_an_input_topic_of_a_foreign_type_is_named_at_once(tmp_path, capsys):
    out = tmp_path / "report"
    assert _evaluate(str(_bag(tmp_path / "bag", foreign=True)), "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert "/eo/image_raw has std_msgs/msg/String, the node subscribes sensor_msgs/msg/Image" in err
    assert not out.exists()  # no node was started, nothing written


def test_a_bag_without_metadata_names_the_missing_file(tmp_path, capsys):
    bag = _bag(tmp_path / "bag")
    (bag / "metadata.yaml").unlink()
    assert _evaluate(str(bag), "--out", str(tmp_path / "report")) == 2
    assert f"{bag / 'metadata.yaml'}: not found" in capsys.readouterr().err
