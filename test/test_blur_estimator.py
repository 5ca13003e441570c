"""Issue 31: the blur estimator: its truth (blur_extent), its head, the decoder it lets frames skip, its output
through every backend, and the suite's error measures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from srdb_ros.data.blur import MotionBlurSynthesizer, blur_extent, rasterize
from srdb_ros.models import build_model, load_model, save_model
from srdb_ros.quality.suite import _rank_rho, estimator_errors, safe_min_blur_px


def _line(length: float, angle: float) -> np.ndarray:
    path = np.linspace(0, length, 400) * complex(math.cos(angle), math.sin(angle))
    return rasterize(path, np.full(400, 1 / 400), complex(path.mean()))


@pytest.mark.parametrize("angle", [0.0, 0.5, -1.0, math.pi / 2])
def test_blur_extent_of_a_straight_blur_is_its_length_and_axis(angle):
    extent = blur_extent(_line(24.0, angle))
    assert extent.length == pytest.approx(24.0, abs=0.8)
    assert -math.pi / 2 < extent.angle <= math.pi / 2
    assert math.cos(extent.angle - angle) ** 2 == pytest.approx(1.0, abs=2e-3)  # same axis (either sign)
    assert extent.elongation > 0.95


def test_blur_extent_of_a_point_and_a_disc():
    point = np.zeros((5, 5), np.float32)
    point[2, 2] = 1
    assert blur_extent(point).length == 0.0
    yy, xx = np.mgrid[-10:11, -10:11]
    disc = (xx**2 + yy**2 <= 64).astype(np.float32)
    assert blur_extent(disc).elongation < 0.02 and blur_extent(disc).length > 10


def test_measured_pairs_carry_the_blur_of_their_flipped_kernel(tmp_path):
    import cv2

    from srdb_ros.data.datasets import SyntheticBlurDataset

    for i in range(2):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.random.default_rng(i).integers(0, 255, (96, 96, 3), np.uint8))
    synth = MotionBlurSynthesizer(min_length=20, max_length=20, motion_probs=(0, 1, 0, 0), seed=1)
    plain = SyntheticBlurDataset([tmp_path], 64, 1, synth, flips=False, measure=True)
    flipped = SyntheticBlurDataset([tmp_path], 64, 1, synth, flips=True, measure=True)
    for index in range(6):
        _, truth = plain[index]
        _, target = flipped[index]
        assert truth[0] == pytest.approx(20.0, abs=1.0) and target[0] == pytest.approx(truth[0])
        assert float(target[1:].norm()) == pytest.approx(float(truth[1:].norm()), abs=1e-5)  # same elongation


@pytest.fixture(scope="module")
def model_with_head():
    torch.manual_seed(1)
    model = build_model("student")
    model.add_blur_head()
    return model.eval()


def test_the_head_gives_an_axis_scaled_by_the_length(model_with_head):
    out = model_with_head(torch.rand(3, 3, 40, 52), "sr")
    assert out.blur.shape == (3, 3) and out.deblur is None
    x, y, length = out.blur.T
    assert torch.all(x >= 0) and torch.all(length >= 0)
    torch.testing.assert_close(torch.hypot(x, y), length, rtol=1e-4, atol=1e-4)


def test_frames_below_the_threshold_skip_the_decoder_and_keep_their_input(model_with_head):
    x = torch.rand(3, 3, 32, 36)
    with torch.no_grad():
        full = model_with_head(x, "both")
        lengths = full.blur[:, 2]
        threshold = float(lengths.median())  # one frame below, one at, one above
        staged = model_with_head(x, "both", min_blur_px=threshold)
    decoded = lengths >= threshold
    assert 0 < int(decoded.sum()) < 3
    torch.testing.assert_close(staged.deblur[0][decoded], full.deblur[0][decoded], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(staged.deblur[0][~decoded], x[~decoded])
    torch.testing.assert_close(staged.sr, full.sr)  # SR still runs for every frame
    torch.testing.assert_close(staged.blur, full.blur)


def test_the_estimate_comes_through_torch_and_onnxruntime_and_sharp_frames_pass(model_with_head, tmp_path):
    from srdb_ros.inference import Enhancer, Frame, ModelFiles
    from srdb_ros.inference.backends import OnnxRuntimeBackend, TorchBackend

    weights = save_model(model_with_head, tmp_path / "with_head.safetensors")
    assert load_model(weights).blur_head is not None
    image = np.random.default_rng(0).integers(0, 256, (30, 44, 3), np.uint8)
    torch_enhancer = Enhancer(TorchBackend(weights))
    onnx_enhancer = Enhancer(OnnxRuntimeBackend(ModelFiles(weights=str(weights))))
    a = torch_enhancer.enhance_batch([Frame(image, "both")])[0]
    b = onnx_enhancer.enhance_batch([Frame(image, "both")])[0]
    assert a.blur is not None and np.allclose(a.blur, b.blur, atol=1e-3)
    assert not a.passed_sharp and torch_enhancer.backend.skips_decoder
    for enhancer in (torch_enhancer, onnx_enhancer):
        passed = enhancer.enhance_batch([Frame(image, "both", min_blur_px=a.blur[2] + 1)])[0]
        assert passed.passed_sharp and passed.deblurred is image and passed.super_resolved.shape == (120, 176, 3)
        kept = enhancer.enhance_batch([Frame(image, "deblur", min_blur_px=max(a.blur[2] - 1, 1e-3))])[0]
        assert not kept.passed_sharp and kept.deblurred is not image


def test_a_model_without_the_estimator_reports_no_blur(student_weights):
    from srdb_ros.inference import Enhancer, Frame
    from srdb_ros.inference.backends import TorchBackend

    enhancer = Enhancer(TorchBackend(student_weights))
    result = enhancer.enhance_batch([Frame(np.zeros((16, 16, 3), np.uint8), "deblur", min_blur_px=5.0)])[0]
    assert result.blur is None and not result.passed_sharp and not enhancer.backend.estimates_blur


def test_suite_estimator_measures():
    kernels = [_line(10.0, 0.0), _line(20.0, 0.3), _line(30.0, -0.4)]
    images = [
        {"blur_estimate": [12.0, 0.0, 12.0], "model_psnr": 30.0, "baseline_psnr": 29.0},
        {
            "blur_estimate": [19.0 * math.cos(0.3), 19.0 * math.sin(0.3), 19.0],
            "model_psnr": 30.0,
            "baseline_psnr": 30.05,
        },
        {"blur_estimate": [25.0, 0.0, 25.0], "model_psnr": 31.0, "baseline_psnr": 30.0},
    ]

    class Pair:
        def __init__(self, kernel):
            self.kernel = kernel

    entry = estimator_errors([Pair(k) for k in kernels], images)
    assert entry["blur_length_error_px"] == pytest.approx(2.0, abs=0.8)
    assert entry["blur_axis_error_deg"] == pytest.approx(0.0, abs=1.0)  # axes 0, 0 and 23 degrees off: median 0
    assert entry["blur_rank_rho"] == pytest.approx(1.0)
    # frames gaining > 0.1 dB have estimates 12 and 25: the safe threshold is 12
    assert safe_min_blur_px([entry]) == pytest.approx(12.0)
    assert _rank_rho(np.array([3.0, 2.0, 1.0]), np.array([1.0, 2.0, 3.0])) == pytest.approx(-1.0)


def test_enhance_writes_each_estimate_and_passes_frames_below_min_blur_px(model_with_head, tmp_path):
    import csv

    import cv2

    from srdb_ros.cli import main

    weights = save_model(model_with_head, tmp_path / "with_head.safetensors")
    frame = np.random.default_rng(4).integers(0, 256, (24, 32, 3), np.uint8)
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "a.png"), frame)
    args = ["enhance", str(tmp_path / "in"), "--model", str(weights), "--backend", "torch", "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "passed"), "--min-blur-px", "1e6"]) == 0
    assert np.array_equal(cv2.imread(str(tmp_path / "passed" / "a_deblurred.png")), frame)  # unchanged
    assert main([*args, "--out", str(tmp_path / "deblurred")]) == 0
    assert not np.array_equal(cv2.imread(str(tmp_path / "deblurred" / "a_deblurred.png")), frame)
    for folder, passed in (("passed", "1"), ("deblurred", "0")):
        with open(tmp_path / folder / "frames.csv") as table:
            (row,) = list(csv.DictReader(table))
        assert float(row["blur_px"]) >= 0 and row["passed_sharp"] == passed and row["input"].endswith("a.png")


class _FixedBlur(torch.nn.Module):
    """A stand-in estimator that measures every frame as ``length`` px (traceable, for the ONNX check)."""

    def __init__(self, length: float) -> None:
        super().__init__()
        self.length = length

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        zero = features.mean(dim=(1, 2, 3))[:, None] * 0
        return zero + torch.tensor([[self.length, 0.0, self.length]])


def test_the_deblur_correction_fades_in_with_the_estimated_blur(tmp_path):
    from srdb_ros.export.onnx_export import export_onnx
    from srdb_ros.models import ModelConfig

    torch.manual_seed(0)
    model = build_model("student")
    model.add_blur_head()
    model.eval()
    x = torch.rand(1, 3, 32, 40)
    outputs = {}
    for fade in ((0.0, 0.0), (1.0, 4.0)):
        model.set_fade(*fade)
        for length in (0.5, 2.5, 10.0):
            model.blur_head = _FixedBlur(length)
            with torch.no_grad():
                outputs[fade, length] = model(x, "deblur").deblur[-1]
    full = outputs[(0.0, 0.0), 2.5]
    assert torch.equal(outputs[(1.0, 4.0), 0.5], x)  # estimated sharp: the input, exactly
    assert torch.allclose(outputs[(1.0, 4.0), 2.5] - x, 0.5 * (full - x), atol=1e-6)  # halfway: half the correction
    assert torch.equal(outputs[(1.0, 4.0), 10.0], outputs[(0.0, 0.0), 10.0])  # blurred: all of it
    model.train()
    with torch.no_grad():
        assert torch.allclose(model(x, "deblur").deblur[-1], outputs[(0.0, 0.0), 0.5], atol=1e-6)  # not in training
    model.eval()
    model.blur_head = _FixedBlur(2.5)
    assert export_onnx(model, "deblur", tmp_path / "faded.onnx").max_abs_diff < 1e-4  # the fade is in the graph
    model.add_blur_head()
    model.set_fade(1.0, 4.0)
    save_model(model, tmp_path / "faded.safetensors")
    assert load_model(tmp_path / "faded.safetensors").config.fade_to_px == 4.0
    with pytest.raises(ValueError, match="fade needs the blur estimator"):
        ModelConfig(fade_from_px=1.0, fade_to_px=4.0)
    with pytest.raises(ValueError, match="fade needs"):
        ModelConfig(blur_head=True, fade_from_px=4.0, fade_to_px=1.0)
