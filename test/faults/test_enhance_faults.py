"""Fault injection for `srdb enhance`: outputs never overwrite inputs or each other, every check on the output
comes before the model loads, and oversized or unreadable files are reported and skipped, not fatal."""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from srdb_ros.cli import main
from srdb_ros.inference import files

pytestmark = pytest.mark.slow  # each case loads the model, some several times


def _checksums(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def _frame(path: Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 256, (24, 32, 3), dtype=np.uint8))


def _png_declaring(path: Path, width: int, height: int) -> None:
    """A few hundred bytes that declare a huge PNG (the pixels would take gigabytes once decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * 4096)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


def _enhance(weights, *args: str) -> int:
    return main(["enhance", *args, "--model", str(weights), "--backend", "torch", "--device", "cpu"])


@pytest.fixture
def no_model(monkeypatch):
    """Fails the test if the model is loaded: output checks must come first."""

    def refuse(*_, **__):
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr(files, "create_backend", refuse)


@pytest.mark.parametrize("out", [".", "results"])
def test_an_output_folder_that_holds_the_inputs_is_refused(tmp_path, student_weights, capsys, no_model, out):
    folder = tmp_path / "d"
    _frame(folder / "cam.png")
    _frame(folder / "cam_deblurred.png", seed=1)  # the user's own file, named like a result
    before = _checksums(folder)
    assert _enhance(student_weights, str(folder), "--out", str(folder / out)) == 2
    assert _checksums(folder) == before  # nothing overwritten, nothing added, nothing enhanced twice
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "overlaps the input folder" in err[0]
    assert _enhance(student_weights, str(folder / "cam.png"), "--out", str(folder)) == 2  # a file's own folder


def test_same_stems_keep_their_folder_layout_and_results_are_never_overwritten(tmp_path, student_weights, capsys):
    inputs, out = tmp_path / "in", tmp_path / "out"
    _frame(inputs / "frame.jpg")
    _frame(inputs / "sub1" / "frame.png", seed=1)
    _frame(inputs / "sub2" / "frame.png", seed=2)
    assert _enhance(student_weights, str(inputs), "--out", str(out)) == 0
    results = _checksums(out)
    images = {"frame_deblurred.png", "sub1/frame_deblurred.png", "sub2/frame_deblurred.png"}
    assert set(results) == images | {"frames.csv"}
    assert len({results[name] for name in images}) == 3  # three different frames, three different results
    assert len((out / "frames.csv").read_text().splitlines()) == 4  # a header and a row per frame
    capsys.readouterr()
    assert _enhance(student_weights, str(inputs), "--out", str(out)) == 2  # again: refused, nothing replaced
    assert "--overwrite" in capsys.readouterr().err and _checksums(out) == results
    assert _enhance(student_weights, str(inputs), "--out", str(out), "--overwrite") == 0
    clash = tmp_path / "clash"
    _frame(clash / "a" / "x.png")
    _frame(clash / "b" / "x.png")
    assert _enhance(student_weights, str(clash / "a" / "x.png"), str(clash / "b" / "x.png"), "--out", str(out)) == 2
    assert "would both write" in capsys.readouterr().err


def test_unwritable_output_is_refused_before_the_model_loads(tmp_path, student_weights, capsys, no_model):
    _frame(tmp_path / "in" / "a.png")
    (tmp_path / "file").write_text("not a folder")
    assert _enhance(student_weights, str(tmp_path / "in"), "--out", str(tmp_path / "file" / "out")) == 2
    assert "cannot create it" in capsys.readouterr().err


def test_oversized_and_unreadable_files_are_skipped_and_the_rest_processed(tmp_path, student_weights, capsys):
    inputs, out = tmp_path / "in", tmp_path / "out"
    _frame(inputs / "good.png")
    _png_declaring(inputs / "huge.png", 20000, 20000)
    (inputs / "broken.png").write_bytes(b"not an image at all")
    assert _enhance(student_weights, str(inputs), "--out", str(out)) == 1
    assert set(_checksums(out)) == {"good_deblurred.png", "frames.csv"}
    err = capsys.readouterr().err
    assert "huge.png: declares over" in err and "broken.png: cannot be read" in err  # refused before decoding
    assert "2 of 3 inputs skipped" in err
    _frame(inputs / "big.png")
    args = (str(inputs / "big.png"), "--out", str(tmp_path / "limited"), "--max-pixels", "500")
    assert _enhance(student_weights, *args) == 1  # 32x24 = 768 pixels: over the given limit
    assert _enhance(student_weights, *args[:3], "--max-pixels", "500", "--max-side", "16") == 0  # fits once scaled
    assert _enhance(student_weights, *args[:3], "--tile", "16") == 2  # tiles must exceed twice the overlap
    cv2.imwrite(str(inputs / "big.png"), np.random.default_rng(3).integers(0, 256, (90, 150, 3), dtype=np.uint8))
    assert _enhance(student_weights, *args[:3], "--tile", "64", "--overwrite") == 0  # in 64-px tiles
    assert cv2.imread(str(tmp_path / "limited" / "big_deblurred.png")).shape == (90, 150, 3)
