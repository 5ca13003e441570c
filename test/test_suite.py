"""The deblurring robustness suite (`srdb score --suite deblur`): its own shake generator, kernel centring, the
rows' arithmetic, and the bundled student on sharp frames."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from srdb_ros.cli import main
from srdb_ros.data.blur import blur_extent
from srdb_ros.quality.suite import (
    ROWS,
    SUN_HAYS_VALIDATION_FRAMES,
    SuiteData,
    centroid_centred,
    format_suite,
    run_suite,
    suite_shake_kernel,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


def _centroid(k: np.ndarray) -> tuple[float, float]:
    yy, xx = np.mgrid[: k.shape[0], : k.shape[1]]
    return float((k * yy).sum() / k.sum()), float((k * xx).sum() / k.sum())


def test_suite_shake_kernels_are_unit_centred_and_follow_the_length():
    spreads = []
    for length in (1.0, 10.0, 40.0):
        k = suite_shake_kernel(np.random.default_rng(3), length)
        assert k.sum() == pytest.approx(1.0, abs=1e-5) and (k >= 0).all()
        c = k.shape[0] // 2
        cy, cx = _centroid(k)
        assert abs(cy - c) < 0.05 and abs(cx - c) < 0.05
        yy, xx = np.mgrid[: k.shape[0], : k.shape[1]]
        spreads.append(float(np.sqrt((k * ((yy - cy) ** 2 + (xx - cx) ** 2)).sum())))
    assert spreads[0] < spreads[1] < spreads[2]
    assert not np.array_equal(
        suite_shake_kernel(np.random.default_rng(1), 20), suite_shake_kernel(np.random.default_rng(2), 20)
    )


def test_a_sub_pixel_shake_blurs_rather_than_rounding_to_a_point():
    """The nearly sharp rows' 0.5-2 px paths mostly lie inside one pixel: their kernels must still spread (as the
    image's interpolation does), or those rows hold sharp frames with noise."""
    for seed in range(12):
        rng = np.random.default_rng(seed)
        k = suite_shake_kernel(rng, float(rng.uniform(0.5, 2.0)))
        assert k.max() < 0.9 and 1.0 < blur_extent(k).length < 3.5


def test_off_centre_kernels_are_shifted_to_their_centroid():
    k = np.zeros((15, 15))
    k[2, 3:9] = 1.0  # a stroke far off the centre, as the Levin kernels are stored
    out = centroid_centred(k)
    c = out.shape[0] // 2
    cy, cx = _centroid(out)
    assert out.sum() == pytest.approx(1.0) and abs(cy - c) < 1e-6 and abs(cx - c) < 1e-6


class _Identity(torch.nn.Module):
    """A 'model' that returns its input: every row's gain must be exactly 0, sharp frames exactly unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, task, **_):
        return SimpleNamespace(deblur=[x])


def _data_root(tmp_path: Path) -> Path:
    """The suite's layout, filled with the package's own sample frames (stand-ins for the test sets)."""
    root = tmp_path / "data"
    (root / "eo/bsd68").mkdir(parents=True)
    for f in sorted((SAMPLES / "eo").glob("*.png"))[:3]:
        shutil.copy(f, root / "eo/bsd68" / f.name)
    (root / "eo/sun_hays80").mkdir(parents=True)  # its first 16 frames are validation frames: the suite skips them
    astronaut = cv2.imread(str(SAMPLES / "eo" / "astronaut.png"))
    for i in range(SUN_HAYS_VALIDATION_FRAMES + 1):
        cv2.imwrite(str(root / "eo/sun_hays80" / f"frame{i:02d}.png"), np.roll(astronaut, 7 * i, axis=1)[:96, :96])
    (root / "ir/hituav_val").mkdir(parents=True)
    for f in sorted((SAMPLES / "ir").glob("hituav_*.jpg"))[:2]:
        shutil.copy(f, root / "ir/hituav_val" / f.name)
    (root / "kernels").mkdir()
    rng = np.random.default_rng(0)
    np.savez(
        root / "kernels" / "levin09_kernels.npz", **{f"kernel_{i}": suite_shake_kernel(rng, 12) for i in range(1, 9)}
    )
    gopro = root / "deblur_real" / "GoPro_DeepDeblur_samples" / "images"
    gopro.mkdir(parents=True)
    sharp = cv2.imread(str(SAMPLES / "eo" / "coffee.png"))[:96, :128]
    cv2.imwrite(str(gopro / "Coffee_sharp1.png"), sharp)
    cv2.imwrite(str(gopro / "Coffee_blur1.png"), cv2.blur(sharp, (9, 1)))
    return root


def test_every_row_scores_the_model_against_the_blurry_input(tmp_path):
    result = run_suite(_Identity(), SuiteData(_data_root(tmp_path), max_images=3, crop=64))
    rows = {r["row"]: r for r in result["rows"]}
    assert list(rows) == [row.name for row in ROWS]
    for row in ROWS:
        r = rows[row.name]
        assert r["frames"] > 0
        if row.identity:  # sharp frames: nothing to undo, the identity leaves them as they are
            assert r["gain"] is None and r["model_psnr"] is None and abs(r["mean_shift_grey"]) < 1e-4
            assert r["frames_unchanged"] == r["frames"] and r["worst_frame_psnr"] is None
        else:  # the identity's output is the blurry input: no gain, and every blur row is really blurred
            assert r["gain"] == pytest.approx(0.0, abs=1e-9)
            assert r["blurry_psnr"] < 60
    assert rows["Levin kernels, linear light (Sun-Hays)"]["frames"] == 8  # 8 kernels on one frame
    assert result["summary"]["worst_gain"] == min(r["gain"] for r in result["rows"] if r["gain"] is not None)
    json.dumps(result, allow_nan=False)  # strict JSON: no Infinity for frames returned unchanged
    assert "returned unchanged" in format_suite(result)


def test_a_model_with_the_estimator_gets_its_errors_per_row_and_a_safe_threshold(tmp_path):
    from srdb_ros.models import build_model

    torch.manual_seed(0)
    model = build_model("student")
    model.add_blur_head()
    result = run_suite(model.eval(), SuiteData(_data_root(tmp_path), max_images=1, crop=48))
    rows = {r["row"]: r for r in result["rows"]}
    levin = rows["Levin kernels, linear light (Sun-Hays)"]
    assert levin["blur_length_error_px"] >= 0 and -1 <= levin["blur_rank_rho"] <= 1
    assert rows["sharp frames (output vs input)"]["blur_true_px"] == 0.0
    assert "blur_length_error_px" not in rows["real GOPRO pairs"]  # no known kernel
    assert all(len(r["frame_blur"]) == r["frames"] for r in result["rows"])
    assert result["summary"]["safe_min_blur_px"] >= 0
    assert "blur estimator" in format_suite(result)
    json.dumps(result)


@pytest.mark.slow
def test_suite_command_prints_json(tmp_path, capsys):
    root = _data_root(tmp_path)
    argv = ["score", "--suite", "deblur", "--random-init", "--data-root", str(root), "--max-images", "1"]
    assert main([*argv, "--crop", "48", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["rows"]) == len(ROWS) and {"worst_row", "eo_mean_gain", "ir_mean_gain"} <= set(out["summary"])
    assert main([*argv, "--data-root", str(tmp_path / "missing")]) != 0


SHARP_PSNR_DB = 45.0  # the bundled student against its own sharp input
SHARP_DARKENING_GREY = 0.3  # mean level it may lower a sharp frame by, grey levels of 255


@pytest.mark.xfail(
    strict=True,
    reason="target not reached yet: the bundled student (fading its correction out below 4 px of estimated blur) "
    "returns 5 of the 6 sample photos at >= 45 dB, but chelsea, whose fur it reads as 4.9 px of blur, at 40.2 dB "
    "and 0.79 grey levels darker (suite's sharp frames: 51.6 dB pooled, all 12 at >= 45 dB, 0.11 darker); strict, "
    "so a student that meets it turns this into a failure until the mark is removed",
)
def test_the_bundled_student_leaves_sharp_frames_alone():
    """Sharp frames (the package's own free sample photos, centre 256 px) come back nearly unchanged: a robot's
    camera is sharp most of the time, and a deblurring model that softens or darkens it does harm."""
    from srdb_ros.data.datasets import read_image
    from srdb_ros.models import load_model
    from srdb_ros.quality.metrics import psnr
    from srdb_ros.quality.scoring import center_crop, run_model
    from srdb_ros.resources import bundled_model

    model = load_model(bundled_model()).eval()
    for path in sorted((SAMPLES / "eo").glob("*.png")):
        frame = center_crop(read_image(path), 256)
        out = run_model(model, frame, "deblur")
        assert psnr(out, frame) >= SHARP_PSNR_DB, path.name
        assert (out.mean() - frame.mean()) * 255 >= -SHARP_DARKENING_GREY, path.name


BLUR_LENGTH_ERROR_PX = 3.0  # issue 31's target for the estimator's length error
BLUR_AXIS_ERROR_DEG = 20.0


@pytest.mark.xfail(
    strict=True,
    reason="target not reached yet: the bundled estimator ranks blur within a scene (Levin rho 0.95) but its "
    "length errs by 3.7-7.3 px on the suite's blurred synthetic rows and it reads long blur short "
    "(models/README.md); strict, so an estimator that meets it turns this into a failure until the mark is removed",
)
def test_the_bundled_estimator_measures_a_20_px_blur_and_a_sharp_frame():
    """On the package's sample photos (centre 256 px): a sharp frame measures below 3 px, and the same frame with
    a straight 20 px motion blur measures 20 +- 3 px along the blur's axis (+- 20 degrees)."""
    import math

    from srdb_ros.data.blur import MotionBlurSynthesizer, blur_extent
    from srdb_ros.data.datasets import read_image
    from srdb_ros.models import load_model
    from srdb_ros.quality.scoring import center_crop, run_model_with_blur
    from srdb_ros.resources import bundled_model

    model = load_model(bundled_model()).eval()
    motion = MotionBlurSynthesizer(min_length=20, max_length=20, motion_probs=(0, 1, 0, 0), noise_prob=0.0, seed=3)
    truth = blur_extent(motion.kernel(0))
    for path in sorted((SAMPLES / "eo").glob("*.png")):
        frame = center_crop(read_image(path), 256)
        with torch.no_grad():
            _, sharp = run_model_with_blur(model, frame, "deblur")
            _, blurred = run_model_with_blur(model, motion.apply(frame, 0), "deblur")
        assert sharp[2] < BLUR_LENGTH_ERROR_PX, path.name
        assert abs(blurred[2] - truth.length) <= BLUR_LENGTH_ERROR_PX, path.name
        axis = abs(math.atan2(blurred[1], blurred[0]) - truth.angle) % math.pi
        assert math.degrees(min(axis, math.pi - axis)) <= BLUR_AXIS_ERROR_DEG, path.name
