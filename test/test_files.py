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


@pytest.mark.slow
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


@pytest.mark.parametrize(
    "config",
    [
        {"name": "student", "base_channels": 160},
        {"name": "student", "base_channels": "16"},
        {"name": "student", "num_res": -1},
        {"name": "student", "upscale": 8},
        {"name": "student", "fit_kernel": 4},
        {"name": "student", "sneaky": 1},
    ],
)
def test_weight_metadata_is_validated_before_any_allocation(tmp_path, config):
    import json

    import torch
    from safetensors.torch import save_file

    from srdb_ros.models import WeightFileError, load_model

    path = tmp_path / "tiny.safetensors"
    save_file({"x": torch.zeros(1)}, str(path), metadata={"format": "srdb_ros/1", "srdb_config": json.dumps(config)})
    assert path.stat().st_size < 1000
    with pytest.raises(WeightFileError, match="invalid model description"):
        load_model(path)


@pytest.mark.slow
def test_a_damaged_onnx_cache_entry_is_detected_and_exported_again(tmp_path, student_weights):
    import onnxruntime as ort

    from srdb_ros.export.onnx_export import ensure_onnx

    path = ensure_onnx(student_weights, "deblur", tmp_path)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])  # cut short, as by a crash or a full disk
    assert ensure_onnx(student_weights, "deblur", tmp_path) == path
    assert path.read_bytes() == good
    ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF  # one damaged byte that still parses
    path.write_bytes(bytes(flipped))
    ensure_onnx(student_weights, "deblur", tmp_path)
    assert path.read_bytes() == good


@pytest.mark.slow
def test_concurrent_first_starts_share_an_empty_cache(tmp_path, student_weights):
    """Four processes exporting into one empty cache at once all succeed and leave one valid entry."""
    code = (
        "import sys; from srdb_ros.export.onnx_export import ensure_onnx; "
        "import onnxruntime as ort; p = ensure_onnx(sys.argv[1], 'sr', sys.argv[2]); "
        "ort.InferenceSession(str(p), providers=['CPUExecutionProvider']); print(p)"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(student_weights), str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in results]
    assert len({out.strip() for out, _ in results}) == 1
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".onnx", ".sha256"]  # no temporary file left


@pytest.mark.slow
def test_measured_peak_memory_stays_within_the_documented_table():
    from srdb_ros.inference.memory import PEAK_BYTES_PER_PIXEL, max_pixels_for, measure

    _, per_pixel = measure("deblur", 640, 480)
    assert 0 < per_pixel <= PEAK_BYTES_PER_PIXEL["cpu"]["deblur"], per_pixel
    _, per_pixel = measure("sr", 320, 240)
    assert 0 < per_pixel <= PEAK_BYTES_PER_PIXEL["cpu"]["sr"], per_pixel
    assert max_pixels_for("sr", "cpu", 10**9, tile_size=256) > max_pixels_for("sr", "cpu", 10**9)  # tiling helps


def test_an_unwritable_cache_falls_back_to_a_temporary_folder_with_one_warning(
    tmp_path, student_weights, capture_logger, monkeypatch
):
    from srdb_ros.export import onnx_export

    monkeypatch.setattr(onnx_export, "_FALLBACK_CACHE", None)
    log = capture_logger("srdb_ros.export.onnx_export")
    blocked = tmp_path / "cache"
    blocked.write_text("a file in the cache's place")
    first = onnx_export.ensure_onnx(student_weights, "deblur", blocked / "onnx")
    second = onnx_export.ensure_onnx(student_weights, "sr", blocked / "onnx")
    assert first.is_file() and second.parent == first.parent != blocked / "onnx"
    warnings = [r.getMessage() for r in log.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "cannot be used" in warnings[0]
    assert blocked.read_text() == "a file in the cache's place"


def test_a_graph_shipped_beside_its_weights_needs_no_cache(tmp_path, student_weights, capture_logger):
    import shutil

    from srdb_ros.core.files import file_digest
    from srdb_ros.export.onnx_export import ensure_onnx, export_onnx, shipped_onnx
    from srdb_ros.models import load_model

    weights = tmp_path / "ship" / "model.safetensors"
    weights.parent.mkdir()
    shutil.copy(student_weights, weights)
    shipped = shipped_onnx(weights, "deblur")
    export_onnx(load_model(weights), "deblur", shipped, check=False, weights_sha256=file_digest(weights))
    log = capture_logger("srdb_ros.export.onnx_export")
    blocked = tmp_path / "blocked"
    blocked.write_text("")
    assert ensure_onnx(weights, "deblur", blocked / "onnx") == shipped and not log.text  # no export, no warning
    export_onnx(load_model(weights), "sr", shipped_onnx(weights, "sr"), check=False, weights_sha256="0" * 64)
    assert ensure_onnx(weights, "sr", tmp_path / "cache") != shipped_onnx(weights, "sr")  # another model's graph
