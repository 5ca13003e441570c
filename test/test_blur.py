"""Issue 16: the realistic blur synthesiser's statistics (lengths, kernels, centring, noise, seeds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from srdb_ros.data.blur import (
    MOTIONS,
    MotionBlurSynthesizer,
    ThermalBlurSynthesizer,
    linear_to_srgb,
    srgb_to_linear,
    synthesizer_for,
)


def _centroid(k: np.ndarray) -> tuple[float, float]:
    yy, xx = np.mgrid[: k.shape[0], : k.shape[1]]
    return float((k * yy).sum()), float((k * xx).sum())


def test_lengths_cover_the_configured_range_uniformly():
    synth = MotionBlurSynthesizer(min_length=4, max_length=48, seed=0)
    draws = [synth.draw(i) for i in range(400)]
    lengths = np.array([d[1] for d in draws])
    assert lengths.min() >= 4 and lengths.max() <= 48
    assert lengths.max() > 45 and lengths.min() < 7  # reaches both ends (>= 48 px at 640 px is 7.5 %)
    assert abs(np.mean(lengths) - 26) < 2.5  # uniform: mean 26, std 12.7
    assert abs(np.std(lengths) - 44 / np.sqrt(12)) < 1.5
    kinds = {d[0] for d in draws}
    assert kinds == set(MOTIONS)  # shake, linear and curved motion all occur
    for _, length, path, _ in draws[:50]:  # the path is as long as drawn
        assert np.abs(np.diff(path)).sum() == pytest.approx(length, rel=1e-6)


@pytest.mark.parametrize("cls", [MotionBlurSynthesizer, ThermalBlurSynthesizer])
def test_kernels_are_normalised_anchored_and_sized_by_length(cls):
    synth = cls(min_length=4, max_length=48, seed=1)
    for i in range(60):
        k = synth.kernel(i)
        _, length, path, weights = synth.draw(i)
        assert k.dtype == np.float32 and (k >= 0).all()
        assert k.sum() == pytest.approx(1.0, abs=1e-5)
        assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
        assert k.shape[0] <= synth.max_kernel_size
        extent = max(np.ptp(path.real), np.ptp(path.imag))
        assert k.shape[0] >= extent  # the kernel holds the whole path ...
        assert k.shape[0] <= 2 * extent + 5  # ... and follows its length
        c = k.shape[0] // 2
        cy, cx = _centroid(k)
        centroid = np.sum(path * weights) - synth.anchor(path, weights)  # where the exposure's centroid lands
        assert cy - c == pytest.approx(centroid.imag, abs=1e-3) and cx - c == pytest.approx(centroid.real, abs=1e-3)
        if cls is MotionBlurSynthesizer:
            assert abs(cy - c) < 1e-3 and abs(cx - c) < 1e-3  # a shutter: centroid on the centre, no mean shift


def test_thermal_kernel_puts_the_newest_position_on_the_centre():
    synth = ThermalBlurSynthesizer(min_length=20, max_length=40, seed=5)
    for i in range(20):
        k = synth.kernel(i)
        _, _, path, weights = synth.draw(i)
        c = k.shape[0] // 2
        assert synth.anchor(path, weights) == path[-1]
        newest = k[c - 1 : c + 2, c - 1 : c + 2].sum()  # the newest sample splats into the centre 3x3
        assert newest > np.median(k[k > 0]) * 2  # ... which holds the brightest part of the trail
        cy, cx = _centroid(k)
        assert np.hypot(cy - c, cx - c) > 1.0  # the trail pulls the centroid behind the newest position


def test_thermal_smear_decays_into_the_past():
    synth = ThermalBlurSynthesizer(seed=2)
    _, _, _, w = synth.draw(0)
    assert w.sum() == pytest.approx(1.0) and np.all(np.diff(w) > 0)  # newest position brightest
    assert w[-1] / w[0] > 5
    _, _, _, uniform = MotionBlurSynthesizer(seed=2).draw(0)
    assert np.allclose(uniform, uniform[0])  # a shutter weights the exposure uniformly


def test_draws_reproduce_from_the_seed():
    a, b = MotionBlurSynthesizer(seed=3), MotionBlurSynthesizer(seed=3)
    np.testing.assert_array_equal(a.kernel(7), b.kernel(7))
    assert not np.array_equal(a.kernel(7), a.kernel(8))
    assert not np.array_equal(a.kernel(7), MotionBlurSynthesizer(seed=4).kernel(7))
    img = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    np.testing.assert_array_equal(a.apply(img, 5), b.apply(img, 5))  # noise and JPEG are seeded too


def test_blur_happens_in_linear_light_with_poisson_gaussian_noise():
    x = np.linspace(0, 1, 101, dtype=np.float32)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-5)
    # a black/white edge blurred in linear light is brighter at mid-way than one blurred in sRGB values
    edge = np.zeros((40, 40), np.float32)
    edge[:, 20:] = 1.0
    quiet = {"shot_noise": 0.0, "read_noise": 0.0, "motion_probs": (0, 1, 0)}
    lin = MotionBlurSynthesizer(min_length=20, max_length=20, seed=0, **quiet)
    raw = MotionBlurSynthesizer(min_length=20, max_length=20, seed=0, linear_light=False, **quiet)
    assert lin.apply(edge, 0).mean() > raw.apply(edge, 0).mean() + 0.02
    # noise: variance grows with the signal (shot noise), and read noise alone is flat
    flat = MotionBlurSynthesizer(seed=0, shot_noise=0.02, read_noise=0.0, linear_light=False)
    rng_sample = [flat.apply(np.full((64, 64), v, np.float32), 1) - v for v in (0.2, 0.8)]
    assert np.std(rng_sample[1]) > np.std(rng_sample[0]) * 1.4


def test_blur_removes_detail_from_a_real_photo():
    import cv2

    img = cv2.imread(str(Path(__file__).resolve().parents[1] / "samples" / "eo" / "astronaut.png"))
    synth = MotionBlurSynthesizer(min_length=15, max_length=15, shot_noise=0.0, read_noise=0.0, seed=3)
    blurred = synth.apply(img, 0)
    assert blurred.dtype == np.uint8 and blurred.shape == img.shape
    assert cv2.Laplacian(blurred, cv2.CV_64F).var() < 0.3 * cv2.Laplacian(img, cv2.CV_64F).var()


def test_uint16_thermal_frames_keep_dtype_and_config_typos_fail():
    frame = np.random.default_rng(1).integers(20000, 30000, (48, 64), dtype=np.uint16)
    out = ThermalBlurSynthesizer(seed=0).apply(frame, 0)
    assert out.dtype == np.uint16 and out.shape == frame.shape
    assert abs(float(out.mean()) - float(frame.mean())) < 200  # smear preserves the mean level
    with pytest.raises(ValueError, match="max_lenght"):
        synthesizer_for("eo", {"max_lenght": 30}, 0)
    with pytest.raises(ValueError):
        MotionBlurSynthesizer(min_length=10, max_length=5)
