"""Fault injection for `srdb train`: every data path of every enabled stage is checked before the first step and
before a run folder exists, so a typo fails in seconds and a plain retry works."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from srdb_ros.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, **data) -> Path:
    cfg = yaml.safe_load((ROOT / "config" / "train_smoke.yaml").read_text())
    cfg["data"] = {k: ([str(ROOT / p) for p in v] if isinstance(v, list) else v) for k, v in cfg["data"].items()}
    cfg["data"].update({"eo_val": str(ROOT / "samples/eo"), "ir_val": str(ROOT / "samples/ir"), **data})
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize(
    "data, says",
    [
        ({"ir_train": ["missing/ir_train"]}, "data.ir_train"),
        ({"eo_val": "missing/eo_val"}, "data.eo_val"),
        ({"eo_train": []}, "need data.eo_train"),
    ],
)
def test_missing_data_fails_before_training_and_leaves_no_run_folder(tmp_path, capsys, data, says):
    run = tmp_path / "run"
    assert main(["train", "--config", str(_config(tmp_path, **data)), "--output", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0]
    assert not run.exists()  # nothing blocks a plain retry


def test_a_data_root_that_does_not_exist_is_an_error(tmp_path, capsys):
    argv = ["train", "--config", str(ROOT / "config" / "train_smoke.yaml"), "--output", str(tmp_path / "run")]
    assert main([*argv, "--data-root", str(tmp_path / "nonexistent")]) == 2
    assert "--data-root" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_a_missing_student_init_fails_before_training(tmp_path, capsys):
    argv = ["train", "--config", str(_config(tmp_path)), "--output", str(tmp_path / "run")]
    assert main([*argv, "--student-init", str(tmp_path / "nope.safetensors")]) == 2
    assert "student_init" in capsys.readouterr().err and not (tmp_path / "run").exists()
