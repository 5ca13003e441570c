"""The blur synthesiser: statistics of the evaluation blur (lengths, kernels, centring, noise, seeds) and of the
randomised training family (motions, sharp pairs, partial exposure, formation, highlights, noise switch)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from srdb_ros.data.blur import (
    FORMATIONS,
    MOTIONS,
    MotionBlurSynthesizer,
    ThermalBlurSynthesizer,
    linear_to_srgb,
    rasterize,
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
    kinds = {d.kind for d in draws}
    assert kinds == set(MOTIONS) - {"walk"}  # shake, linear and curved motion all occur (walk is opt-in)
    for _, length, path, _, _ in draws[:50]:  # the path is as long as drawn
        assert np.abs(np.diff(path)).sum() == pytest.approx(length, rel=1e-6)


@pytest.mark.parametrize("cls", [MotionBlurSynthesizer, ThermalBlurSynthesizer])
def test_kernels_are_normalised_anchored_and_sized_by_length(cls):
    synth = cls(min_length=4, max_length=48, seed=1)
    for i in range(60):
        k = synth.kernel(i)
        _, length, path, weights, centre = synth.draw(i)
        assert k.dtype == np.float32 and (k >= 0).all()
        assert k.sum() == pytest.approx(1.0, abs=1e-5)
        assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
        assert k.shape[0] <= synth.max_kernel_size
        extent = max(np.ptp(path.real), np.ptp(path.imag))
        assert k.shape[0] >= extent  # the kernel holds the whole path ...
        assert k.shape[0] <= 2 * extent + 5  # ... and follows its length
        c = k.shape[0] // 2
        cy, cx = _centroid(k)
        centroid = np.sum(path * weights) - centre  # where the exposure's centroid lands
        assert cy - c == pytest.approx(centroid.imag, abs=1e-3) and cx - c == pytest.approx(centroid.real, abs=1e-3)
        if cls is MotionBlurSynthesizer:
            assert abs(cy - c) < 1e-3 and abs(cx - c) < 1e-3  # a shutter: centroid on the centre, no mean shift


def test_thermal_kernel_puts_the_newest_position_on_the_centre():
    synth = ThermalBlurSynthesizer(min_length=20, max_length=40, seed=5)
    for i in range(20):
        k = synth.kernel(i)
        _, _, path, weights, centre = synth.draw(i)
        c = k.shape[0] // 2
        assert centre == path[-1]
        newest = k[c - 1 : c + 2, c - 1 : c + 2].sum()  # the newest sample splats into the centre 3x3
        assert newest > np.median(k[k > 0]) * 2  # ... which holds the brightest part of the trail
        cy, cx = _centroid(k)
        assert np.hypot(cy - c, cx - c) > 1.0  # the trail pulls the centroid behind the newest position


def test_thermal_smear_decays_into_the_past():
    synth = ThermalBlurSynthesizer(seed=2)
    w = synth.draw(0).weights
    assert w.sum() == pytest.approx(1.0) and np.all(np.diff(w) > 0)  # newest position brightest
    assert w[-1] / w[0] > 5
    uniform = MotionBlurSynthesizer(seed=2).draw(0).weights
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
    quiet = {"shot_noise": 0.0, "read_noise": 0.0, "motion_probs": (0, 1, 0, 0)}
    lin = MotionBlurSynthesizer(min_length=20, max_length=20, seed=0, **quiet)
    raw = MotionBlurSynthesizer(min_length=20, max_length=20, seed=0, formation_probs=(0, 1, 0), **quiet)
    assert lin.apply(edge, 0).mean() > raw.apply(edge, 0).mean() + 0.02
    assert raw.apply(edge, 0).mean() == pytest.approx(edge.mean(), abs=2e-3)  # display values: the mean stays
    # noise: variance grows with the signal (shot noise), and read noise alone is flat
    flat = MotionBlurSynthesizer(seed=0, shot_noise=0.02, read_noise=0.0, formation_probs=(0, 1, 0))
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


ROBUST = {
    "min_length": 3.0,
    "max_length": 64.0,
    "sharp_prob": 0.12,
    "motion_probs": (0.3, 0.2, 0.2, 0.3),
    "curve_accel": 0.8,
    "partial_exposure_prob": 0.3,
    "formation_probs": (0.4, 0.35, 0.25),
    "highlight_prob": 0.15,
    "noise_prob": 0.7,
    "shot_noise": 1e-3,
    "read_noise": 2e-3,
    "jpeg_prob": 0.1,
}


def test_randomised_family_draws_every_motion_formation_and_sharp_pairs():
    synth = MotionBlurSynthesizer(seed=0, **ROBUST)
    draws = [synth.draw(i) for i in range(600)]
    lengths = np.array([d.length for d in draws])
    assert {d.kind for d in draws} == set(MOTIONS)
    assert 0.10 <= np.mean(lengths <= 3.0) <= 0.16  # about 12 % sharp or nearly sharp
    assert lengths.min() < 0.5 and lengths.max() > 60
    forms = [synth.formation(i) for i in range(600)]
    assert {f.curve for f in forms} == set(FORMATIONS)
    assert all(1.2 <= f.gamma <= 2.2 for f in forms if f.curve == "tone")
    assert 0.1 < np.mean([f.highlight_gain > 1 for f in forms]) < 0.2
    assert 0.6 < np.mean([f.noise_scale > 0 for f in forms]) < 0.8
    for d in draws[:80]:  # partial exposures and accelerated arcs keep the drawn length and a unit kernel
        assert np.abs(np.diff(d.path)).sum() == pytest.approx(d.length, rel=1e-6, abs=1e-9)
        k = rasterize(d.path, d.weights, d.centre)
        assert k.sum() == pytest.approx(1.0, abs=1e-5) and k.shape[0] <= synth.max_kernel_size


def test_options_draw_from_their_own_stream_so_the_evaluation_blur_keeps_its_draws():
    plain = MotionBlurSynthesizer(seed=5)
    partial = MotionBlurSynthesizer(seed=5, partial_exposure_prob=0.5, formation_probs=(0.5, 0.5, 0))
    img = np.random.default_rng(2).random((48, 48, 3)).astype(np.float32)
    same = 0
    for i in range(40):
        a, b = plain.draw(i), partial.draw(i)
        assert a.kind == b.kind and a.length == b.length  # kind and length come from the evaluation stream
        if len(a.path) == len(b.path):  # not a partial exposure
            np.testing.assert_array_equal(plain.kernel(i), partial.kernel(i))
            same += partial.formation(i).curve == "linear"
            if partial.formation(i).curve == "linear":
                np.testing.assert_array_equal(plain.apply(img, i), partial.apply(img, i))
    assert same > 5


def test_noise_strength_spreads_from_quiet_to_strong_and_leaves_the_evaluation_draws_alone():
    img = np.full((64, 64), 0.5, np.float32)
    base = {"min_length": 1.0, "max_length": 1.0, "read_noise": 0.01, "shot_noise": 0.0}
    plain = MotionBlurSynthesizer(seed=3, **base)
    spread = MotionBlurSynthesizer(seed=3, noise_scale=(0.1, 10.0), **base)
    scales = np.array([spread.formation(i).noise_scale for i in range(400)])
    assert scales.min() >= 0.1 and scales.max() <= 10.0
    assert np.mean(scales < 1) == pytest.approx(0.5, abs=0.1)  # log-uniform: as many quiet frames as strong ones
    assert all(plain.formation(i).noise_scale == 1.0 for i in range(20))
    quiet, strong = int(np.argmin(scales[:50])), int(np.argmax(scales[:50]))
    assert spread.apply(img, quiet).std() < plain.apply(img, quiet).std() < spread.apply(img, strong).std()
    with pytest.raises(ValueError, match="noise_scale"):
        MotionBlurSynthesizer(noise_scale=(0.0, 1.0))


def test_walk_shake_ranges_from_jerky_to_smooth():
    synth = MotionBlurSynthesizer(seed=1, min_length=30, max_length=30, motion_probs=(0, 0, 0, 1))

    def turning(path: np.ndarray) -> float:  # mean absolute change of direction per sample
        angles = np.unwrap(np.angle(np.diff(path)))
        return float(np.mean(np.abs(np.diff(angles))))

    turns = [turning(synth.draw(i).path) for i in range(40)]
    assert max(turns) > 5 * min(turns)


def test_saturated_highlights_spread_more_light_than_the_clipped_frame_holds():
    img = np.full((64, 64), 0.1, np.float32)
    img[30:34, 30:34] = 1.0  # a lamp, clipped in the sharp frame
    base = {"min_length": 20, "max_length": 20, "noise_prob": 0.0, "motion_probs": (0, 1, 0, 0)}
    dull = MotionBlurSynthesizer(seed=0, **base).apply(img, 0)
    bright = MotionBlurSynthesizer(seed=0, highlight_prob=1.0, highlight_gain=(4, 4), **base).apply(img, 0)
    assert bright.sum() > dull.sum() + 5
    assert bright.max() <= 1.0


def test_noise_switch_and_sharp_pairs_can_leave_a_frame_untouched():
    synth = MotionBlurSynthesizer(seed=0, sharp_prob=1.0, sharp_max_length=0.0, noise_prob=0.0)
    img = np.random.default_rng(0).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    np.testing.assert_array_equal(synth.apply(img, 3), img)  # zero length, no noise: the frame itself


def test_thermal_shutter_draws_are_centroid_centred_and_smears_readout_anchored():
    synth = ThermalBlurSynthesizer(seed=4, shutter_prob=0.5, min_length=20, max_length=30)
    kinds = {"shutter": 0, "smear": 0}
    for i in range(40):
        d = synth.draw(i)
        shutter = np.allclose(d.weights, d.weights[0])
        kinds["shutter" if shutter else "smear"] += 1
        expected = np.sum(d.path * d.weights) / d.weights.sum() if shutter else d.path[-1]
        assert d.centre == pytest.approx(expected)
    assert min(kinds.values()) > 8


def test_depth_of_field_softens_part_of_the_scene_and_reaches_the_target(tmp_path):
    import cv2

    from srdb_ros.data.blur import blur_extent, disc_kernel
    from srdb_ros.data.datasets import SyntheticBlurDataset

    assert blur_extent(disc_kernel(4.0)).elongation < 0.02  # round: no axis of motion
    img = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    soft = MotionBlurSynthesizer(seed=2, defocus_prob=1.0, defocus_radius=(3.0, 3.0))
    plain = MotionBlurSynthesizer(seed=2)
    for i in range(8):
        scene = soft.scene(img, i)
        assert scene.dtype == img.dtype and scene.shape == img.shape
        np.testing.assert_array_equal(scene, soft.scene(img, i))  # seeded
        assert scene.std() < img.std()  # out of focus: less detail
        assert plain.scene(img, i) is img  # off by default: the evaluation blur keeps its frames
        assert soft.kernel(i).shape == plain.kernel(i).shape  # the motion draw is untouched
    coverage = [float((np.abs(soft.scene(img, i).astype(int) - img).max(axis=2) > 8).mean()) for i in range(20)]
    assert min(coverage) < 0.6 < max(coverage)  # from a part of the frame to nearly all of it
    cv2.imwrite(str(tmp_path / "0.png"), img)
    pairs = SyntheticBlurDataset([tmp_path], 48, 1, dataclasses.replace(soft, sharp_prob=1.0, sharp_max_length=0.0))
    _, sharp = pairs[0]
    assert float(sharp.std()) < float(np.float32(img).std() / 255)  # the training target is the softened scene
    with pytest.raises(ValueError, match="defocus"):
        MotionBlurSynthesizer(defocus_prob=1.5)


def test_blur_preview_draws_every_family_of_the_robust_config(tmp_path):
    import cv2

    from srdb_ros.data.preview import EO_FAMILIES, IR_FAMILIES, blur_preview
    from srdb_ros.training.config import read_config_dict

    blur = read_config_dict(Path(__file__).parents[1] / "config" / "train_cpu_robust.yaml")["data"]
    rng = np.random.default_rng(0)
    eo, ir = tmp_path / "eo.png", tmp_path / "ir.png"
    cv2.imwrite(str(eo), rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))
    cv2.imwrite(str(ir), rng.integers(0, 256, (96, 96), dtype=np.uint8))
    out = blur_preview(eo, ir, tmp_path / "preview.png", blur["blur"], blur["ir_blur"], crop=64)
    picture = cv2.imread(str(out))
    assert picture is not None and picture.shape[1] > picture.shape[0]  # a column per family
    assert any("depth of field" in title for title, _ in EO_FAMILIES)
    assert any("depth of field" in title for title, _ in IR_FAMILIES)
