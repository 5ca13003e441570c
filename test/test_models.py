"""Issue 4: the integrated network, its deploy form, weight files and reference checkpoint import."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pytest
import torch

from srdb_ros.models import (
    WeightFileError,
    build_model,
    count_parameters,
    load_mimo_unet_reference,
    load_model,
    load_span_reference,
    save_model,
)
from srdb_ros.models.mimo_unet import MIMOUNetEncoder
from srdb_ros.models.span import SPAN, Conv3XC, switch_to_deploy

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name, paper_m", [("teacher", 9.04), ("student", 3.94)])
def test_parameter_counts_match_paper_table2(name, paper_m):
    params = count_parameters(build_model(name))
    assert abs(params / 1e6 - paper_m) / paper_m < 0.005


def test_reference_part_sizes():
    teacher, student = build_model("teacher"), build_model("student")
    mimo = lambda m: count_parameters(m.encoder) + count_parameters(m.decoder)  # noqa: E731
    assert round(mimo(teacher) / 1e6, 3) == 6.807
    assert round(mimo(student) / 1e6, 3) == 1.706
    assert round(count_parameters(student.span) / 1e6, 3) == 2.237


def _randomize(module: torch.nn.Module) -> None:
    """Random weights and biases of realistic scale (zero biases would hide bias-fusion bugs)."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05)


def test_conv3xc_deploy_form_is_exact_and_fused_once():
    conv = Conv3XC(8, 16, gain1=2)
    _randomize(conv)
    x = torch.randn(2, 8, 13, 17)
    with torch.no_grad():
        expected = conv(x)
        conv.switch_to_deploy()
        got = conv(x)
    assert not hasattr(conv, "sk") and not hasattr(conv, "conv")
    assert torch.allclose(got, expected, atol=1e-5)


def test_span_deploy_form_matches_training_form():
    span = SPAN(feature_channels=48).eval()
    _randomize(span)
    x = torch.rand(1, 3, 23, 31)
    with torch.no_grad():
        expected = span(x)
        switch_to_deploy(span)
        got = span(x)
    rel = (got - expected).abs().max() / expected.abs().max()
    assert (got - expected).abs().max() < 1e-4 * max(1.0, float(expected.abs().max())), rel
    assert got.shape == (1, 3, 92, 124)


def test_model_deploy_conversion_output_equal():
    model = build_model("student").eval()
    x = torch.rand(1, 3, 32, 40)
    with torch.no_grad():
        before = model(x, "both")
        model.to_deploy()
        after = model(x, "both")
    assert model.config.deploy
    assert torch.allclose(before.sr, after.sr, atol=1e-4)
    assert torch.equal(before.deblur[0], after.deblur[0])
    assert count_parameters(model) < count_parameters(build_model("student"))


@pytest.mark.parametrize("size", [(246, 310), (17, 23), (5, 7), (64, 64)])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.slow
def test_every_task_any_size(size, channels):
    model = build_model("student").eval()
    x = torch.rand(1, channels, *size)
    with torch.no_grad():
        out = model(x, "both", multi_scale=True)
        deblur_only = model(x, "deblur")
        sr_only = model(x, "sr")
    h, w = size
    assert out.deblur[-1].shape == (1, channels, h, w)
    assert out.sr.shape == (1, channels, 4 * h, 4 * w)
    assert [tuple(d.shape[-2:]) for d in out.deblur[:2]] == [(-(-h // 4), -(-w // 4)), (-(-h // 2), -(-w // 2))]
    assert deblur_only.sr is None and sr_only.deblur is None
    assert torch.allclose(deblur_only.deblur[0], out.deblur[-1], atol=1e-6)
    assert torch.allclose(sr_only.sr, out.sr, atol=1e-6)


def test_multi_scale_outputs_have_pyramid_sizes():
    model = build_model("student").eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 36, 44), "deblur", multi_scale=True)
    assert [tuple(d.shape[-2:]) for d in out.deblur] == [(9, 11), (18, 22), (36, 44)]


@pytest.mark.slow
def test_mono_rule_replicates_and_averages():
    model = build_model("student").eval()
    x = torch.rand(1, 1, 20, 24)
    with torch.no_grad():
        mono = model(x, "both")
        rgb = model(x.expand(-1, 3, -1, -1), "both")
    assert torch.allclose(mono.deblur[0], rgb.deblur[0].mean(1, keepdim=True), atol=1e-6)
    assert torch.allclose(mono.sr, rgb.sr.mean(1, keepdim=True), atol=1e-6)


def test_both_runs_the_encoder_once(monkeypatch):
    model = build_model("student").eval()
    calls = []
    original = MIMOUNetEncoder.forward

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MIMOUNetEncoder, "forward", counting)
    with torch.no_grad():
        out = model(torch.rand(1, 3, 16, 16), "both", return_features=True)
    assert len(calls) == 1
    assert out.deblur is not None and out.sr is not None
    assert [f.shape[1] for f in out.features.domain_features()] == [16, 64]


def test_bad_task_and_shape_are_rejected():
    model = build_model("student")
    with pytest.raises(ValueError, match="task"):
        model(torch.rand(1, 3, 8, 8), "denoise")
    with pytest.raises(ValueError, match="1,3"):
        model(torch.rand(1, 4, 8, 8), "deblur")


def test_safetensors_round_trip_rebuilds_the_model(tmp_path):
    model = build_model("teacher").eval()
    path = save_model(model, tmp_path / "t.safetensors")
    loaded = load_model(path).eval()
    assert loaded.config == model.config
    x = torch.rand(1, 3, 16, 20)
    with torch.no_grad():
        assert torch.equal(model(x, "both").sr, loaded(x, "both").sr)
    deploy_path = save_model(build_model("student").to_deploy(), tmp_path / "d.safetensors")
    assert load_model(deploy_path).config.deploy


def test_half_precision_files_are_half_the_size_and_load_as_fp32(tmp_path):
    torch.manual_seed(0)
    model = build_model("student").eval()
    full = save_model(model, tmp_path / "fp32.safetensors")
    half = save_model(model, tmp_path / "fp16.safetensors", half=True)
    assert half.stat().st_size < 0.55 * full.stat().st_size
    loaded = load_model(half).eval()
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = torch.rand(1, 3, 32, 40)
    with torch.no_grad():
        a, b = model(x, "deblur").deblur[-1], loaded(x, "deblur").deblur[-1]
    mse = float(((a - b) ** 2).mean())
    assert 10 * math.log10(1.0 / max(mse, 1e-20)) > 60  # fp16 rounding of the weights: far below visible


def test_weight_file_errors_name_the_file(tmp_path):
    with pytest.raises(WeightFileError, match="not found"):
        load_model(tmp_path / "missing.safetensors")
    bad = tmp_path / "corrupt.safetensors"
    bad.write_bytes(b"\x00\x01not a safetensors file")
    with pytest.raises(WeightFileError, match="corrupt.safetensors"):
        load_model(bad)


def _reference_mimo_state(model) -> dict:
    """The official MIMO-UNet key layout: one flat module with a 6-entry ``feat_extract`` list."""
    state = {}
    for key, value in model.encoder.state_dict().items():
        state[key] = value.clone()
    for key, value in model.decoder.state_dict().items():
        if key.startswith("feat_extract."):
            _, index, tail = key.split(".", 2)
            key = f"feat_extract.{int(index) + 3}.{tail}"
        state[key] = value.clone()
    return state


def test_mimo_unet_reference_checkpoint_import(tmp_path):
    source = build_model("student")
    _randomize(source.encoder)
    _randomize(source.decoder)
    state = _reference_mimo_state(source)
    assert "feat_extract.5.main.0.weight" in state and "Encoder.0.layers.0.main.0.main.0.weight" in state
    path = tmp_path / "MIMO-UNet.pkl"
    torch.save({"model": state}, path)
    target = build_model("student")
    load_mimo_unet_reference(target, path)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(source.eval()(x, "deblur").deblur[0], target.eval()(x, "deblur").deblur[0])
    state["Encoder.0.extra"] = torch.zeros(1)
    torch.save({"model": state}, path)
    with pytest.raises(WeightFileError, match="unexpected"):
        load_mimo_unet_reference(build_model("student"), path)


def test_span_reference_checkpoint_import(tmp_path):
    source = SPAN()
    _randomize(source)
    state = source.state_dict()
    assert "block_1.c1_r.eval_conv.weight" in state and "upsampler.0.weight" in state
    path = tmp_path / "spanx4_ch48.pth"
    torch.save({"params_ema": state, "params": {k: torch.zeros_like(v) for k, v in state.items()}}, path)
    target = build_model("student")
    load_span_reference(target, path)
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert torch.allclose(target.span.eval()(x), source.eval()(x), atol=1e-5)
    del state["conv_cat.weight"]
    torch.save({"params": state}, path)
    with pytest.raises(WeightFileError, match="missing"):
        load_span_reference(build_model("student"), path)


def test_reference_loading_refuses_pickled_code(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "args": argparse.Namespace(lr=1)}, path)  # needs a pickled class
    with pytest.raises(WeightFileError):
        load_mimo_unet_reference(build_model("student"), path)


SHARED = ROOT.parent / "shared"


def _shared_weight(*patterns: str):
    folder = SHARED / "weights"
    for pattern in patterns:
        found = sorted(folder.glob(pattern)) if folder.is_dir() else []
        if found:
            return found[0]
    return None


def test_official_checkpoints_improve_real_images_when_present():
    """With the official MIMO-UNet and SPAN x4 files in shared/weights, real frames must get better."""
    from srdb_ros.data.datasets import bicubic_resize, read_image, to_image, to_tensor
    from srdb_ros.quality.metrics import psnr

    mimo = _shared_weight("MIMO-UNet*.pkl", "*mimo*unet*.p*")
    span = _shared_weight("*span*x4*.pth", "*SPAN*.pth")
    if mimo is None and span is None:
        pytest.skip(
            "no official checkpoints in shared/weights (none can be downloaded here); the reference-format "
            "import is covered by test_*_reference_checkpoint_import"
        )
    if mimo is not None:
        model = build_model("teacher").eval()
        load_mimo_unet_reference(model, mimo)
        pair = SHARED / "data" / "deblur_real" / "GoPro_DeepDeblur_samples" / "images"
        blur, sharp = read_image(pair / "Flower_blur1.png"), read_image(pair / "Flower_sharp1.png")
        with torch.no_grad():
            out = to_image(model(to_tensor(blur)[None], "deblur").deblur[0][0])
        assert psnr(out, sharp) > psnr(blur, sharp) + 1.0
    if span is not None:
        model = build_model("student").eval()
        load_span_reference(model, span)
        hr = read_image(next((SHARED / "data" / "eo" / "set5").glob("*")))
        hr = hr[: hr.shape[0] // 4 * 4, : hr.shape[1] // 4 * 4]
        lr = bicubic_resize(to_tensor(hr), 0.25)
        with torch.no_grad():
            out = to_image(model.span(lr[None])[0])
        bicubic = to_image(bicubic_resize(lr, 4.0))
        assert psnr(out, hr, True, 4) > psnr(bicubic, hr, True, 4)


def test_fused_feature_fusion_equals_the_reference_forward():
    """Issue 17: the encoder's AFFs apply their 1x1 conv before the nearest upsampling (no upsampled
    concatenation is made); the reference MIMO-UNet's deblurred output is unchanged by it."""
    from srdb_ros.models.reference import ReferenceMIMOUNet

    torch.manual_seed(3)
    ref = ReferenceMIMOUNet(base_channels=8, num_res=2).eval()
    x = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        expected = ref(x)[-1]
        feats = ref.enc(x)
        ours = ref.dec(feats)[-1]
        res1 = torch.rand(1, 8, 48, 64)
        res2 = torch.rand(1, 16, 24, 32)
        z = torch.rand(1, 32, 12, 16)
        up = torch.nn.functional.interpolate
        concat = ref.enc.AFFs[0](res1, up(res2, scale_factor=2.0), up(z, scale_factor=4.0))
        fused = ref.enc.AFFs[0].fused([(res1, 1), (res2, 2), (z, 4)])
    torch.testing.assert_close(fused, concat, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_aff_fusion_saves_flops_against_the_reference_count():
    """MIMO-UNet-16 at 1240x984 is 595 GFLOP as the reference computes it (DESIGN.md); the fused AFFs do less."""
    from srdb_ros.models.summary import gflops

    model = build_model("student").to_deploy()
    fused = gflops(model, "deblur", (984, 1240))
    model.encoder.fused_aff = False
    unfused = gflops(model, "deblur", (984, 1240))
    assert 590 < unfused < 600 and fused < unfused - 3
