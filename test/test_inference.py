"""Issue 5: pre/post-processing, ONNX export and parity, backends, selection and error messages."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from srdb_ros.core.contract import output_tasks
from srdb_ros.inference import (
    AGCConfig,
    BackendError,
    Enhancer,
    Frame,
    ModelFiles,
    OnnxRuntimeBackend,
    ProcessingOptions,
    TensorRTBackend,
    TorchBackend,
    create_backend,
)
from srdb_ros.inference.processing import array_to_image, image_to_array, pad_array, run_tiled


@pytest.mark.parametrize(
    "shape, dtype, order",
    [
        ((13, 17), np.uint8, "mono"),
        ((13, 17, 1), np.uint8, "mono"),
        ((13, 17, 3), np.uint8, "rgb"),
        ((13, 17, 3), np.uint8, "bgr"),
        ((13, 17), np.uint16, "mono"),
        ((13, 17, 3), np.float32, "rgb"),
    ],
)
def test_pre_post_round_trip(shape, dtype, order):
    rng = np.random.default_rng(0)
    if dtype == np.float32:
        img = rng.random(shape, dtype=np.float32)
    else:
        img = rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=np.int64).astype(dtype)
    agc = AGCConfig(mode="full")
    x, layout = image_to_array(img, "bgr" if order == "bgr" else "rgb", agc)
    assert x.dtype == np.float32 and x.shape == (1, 1 if order == "mono" else 3, 13, 17)
    assert 0.0 <= x.min() and x.max() <= 1.0
    back = array_to_image(x, layout)
    assert back.dtype == img.dtype and back.shape == img.shape
    if dtype == np.float32:
        np.testing.assert_allclose(back, img, atol=1e-6)
    else:
        np.testing.assert_array_equal(back, img)


def test_bgr_is_fed_to_the_network_as_rgb():
    img = np.zeros((4, 4, 3), np.uint8)
    img[..., 0] = 255  # blue in BGR
    x, _ = image_to_array(img, "bgr")
    assert x[0, 2].min() == 1.0 and x[0, 0].max() == 0.0


def test_agc_percentile_stretch_and_inverse():
    rng = np.random.default_rng(1)
    thermal = (2600 + rng.normal(0, 30, (64, 80))).clip(0, 65535).astype(np.uint16)  # 14-bit-like, low contrast
    agc = AGCConfig("percentile", 1.0, 99.0)
    x, layout = image_to_array(thermal, agc=agc)
    lo, hi = np.percentile(thermal, [1, 99])
    assert layout.value_range == pytest.approx((lo, hi))
    assert x.min() == 0.0 and x.max() == 1.0 and 0.3 < x.mean() < 0.7  # stretched, not crushed
    back = array_to_image(x, layout)
    inside = (thermal >= lo) & (thermal <= hi)
    assert np.abs(back.astype(int) - thermal.astype(int))[inside].max() <= 1
    fixed = AGCConfig("fixed", fixed_min=2000, fixed_max=3000)
    x2, layout2 = image_to_array(thermal, agc=fixed)
    assert layout2.value_range == (2000.0, 3000.0)
    np.testing.assert_allclose(x2[0, 0], (thermal - 2000) / 1000, atol=1e-6)


def test_agc_rejects_bad_settings():
    with pytest.raises(ValueError):
        AGCConfig("auto")
    with pytest.raises(ValueError):
        AGCConfig(low_percentile=99, high_percentile=1)


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 2), np.uint8), np.zeros((0, 4), np.uint8), np.zeros((4, 4), np.int32)])
def test_bad_images_are_rejected(bad):
    with pytest.raises(ValueError):
        image_to_array(bad)


def test_padding_and_tiling_match_whole_frame_for_a_local_operator():
    x = np.random.default_rng(2).random((1, 3, 37, 45), dtype=np.float32)
    padded, size = pad_array(x, 4)
    assert padded.shape[-2:] == (40, 48) and size == (37, 45)

    def upscale2(t):  # a pointwise op with x2 output: tiling must reproduce it exactly
        return np.repeat(np.repeat(t * 2.0, 2, axis=2), 2, axis=3)

    whole = upscale2(x)
    tiled = run_tiled(upscale2, x, tile=16, overlap=4, scale=2, multiple=4)
    np.testing.assert_allclose(tiled, whole, atol=1e-6)


@pytest.mark.slow
def test_tiled_enhancer_is_close_to_whole_frame(student_weights):
    backend = TorchBackend(student_weights, "cpu")
    img = (np.random.default_rng(3).random((48, 64, 3)) * 255).astype(np.uint8)
    whole = Enhancer(backend).enhance(img, "both")
    tiled = Enhancer(backend, ProcessingOptions(tile_size=40, tile_overlap=12)).enhance(img, "both")
    assert tiled.deblurred.shape == whole.deblurred.shape and tiled.super_resolved.shape == whole.super_resolved.shape
    # centre pixels far from tile seams agree; seams differ only by the receptive field cut at the overlap
    assert np.mean(np.abs(tiled.deblurred.astype(int) - whole.deblurred.astype(int))) < 8


def _export(tmp_path, weights, task):
    out = tmp_path / f"m_{task}.onnx"
    result = subprocess.run(
        [sys.executable, "-m", "srdb_ros.cli", "export", "--model", str(weights), "--task", task, "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return out, result.stdout


@pytest.mark.parametrize("task", ["deblur", "sr", "both"])
@pytest.mark.slow
def test_export_cli_onnx_parity(tmp_path, student_weights, task):
    import onnx
    import onnxruntime as ort

    out, stdout = _export(tmp_path, student_weights, task)
    assert "max abs diff" in stdout
    diff = float(stdout.rsplit("max abs diff:", 1)[1].split()[0])
    assert diff <= 1e-3
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto)
    assert {p.key: p.value for p in proto.metadata_props}["task"] == task
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    outs = sess.run(None, {"image": np.random.default_rng(0).random((1, 3, 20, 28), dtype=np.float32)})
    expected = {"deblur": [(1, 3, 20, 28)], "sr": [(1, 3, 80, 112)], "both": [(1, 3, 20, 28), (1, 3, 80, 112)]}[task]
    assert [o.shape for o in outs] == expected


@pytest.mark.slow
def test_fp16_export_runs_in_onnxruntime(tmp_path, student_weights):
    out = tmp_path / "fp16.onnx"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "srdb_ros.cli",
            "export",
            "--model",
            str(student_weights),
            "--task",
            "deblur",
            "--fp16",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    backend = OnnxRuntimeBackend(ModelFiles(onnx=str(out)), "cpu")
    x = np.random.default_rng(9).random((1, 3, 16, 24), dtype=np.float32)
    ref = TorchBackend(student_weights, "cpu").infer("deblur", x)["deblur"]
    assert np.abs(backend.infer("deblur", x)["deblur"] - ref).max() < 2e-2


@pytest.mark.slow
def test_backends_agree(tmp_path, student_weights):
    torch_b = TorchBackend(student_weights, "cpu")
    ort_b = OnnxRuntimeBackend(ModelFiles(weights=str(student_weights)), "cpu")
    x = np.random.default_rng(4).random((1, 3, 24, 32), dtype=np.float32)
    a, b = torch_b.infer("both", x), ort_b.infer("both", x)
    for key in ("deblur", "sr"):
        assert np.abs(a[key] - b[key]).max() < 1e-3


@pytest.mark.parametrize("on_device", [False, True])
def test_enhancer_batches_equal_shapes_and_keeps_dtypes(student_weights, on_device):
    enhancer = Enhancer(TorchBackend(student_weights, "cpu"), device_processing=on_device)
    eo = (np.random.default_rng(5).random((24, 30, 3)) * 255).astype(np.uint8)
    ir = (np.random.default_rng(6).random((24, 30)) * 65535).astype(np.uint16)
    calls = []
    method = "infer_tensor" if on_device else "infer"
    original = getattr(enhancer.backend, method)
    setattr(enhancer.backend, method, lambda task, x: calls.append(tuple(x.shape)) or original(task, x))
    results = enhancer.enhance_batch([Frame(eo, "sr", "rgb"), Frame(ir, "sr")])
    assert calls == [(2, 3, 24, 32)]
    assert results[0].super_resolved.shape == (96, 120, 3) and results[0].super_resolved.dtype == np.uint8
    assert results[1].super_resolved.shape == (96, 120) and results[1].super_resolved.dtype == np.uint16
    assert set(results[0].timings_ms) == {"preprocess", "infer", "postprocess"}
    with pytest.raises(ValueError, match="one task"):
        enhancer.enhance_batch([Frame(eo, "sr"), Frame(eo, "deblur")])


def test_auto_backend_falls_back_and_says_why(student_weights, capture_logger):
    srdb_log = capture_logger("srdb_ros.inference.backends")
    backend = create_backend("auto", ModelFiles(weights=str(student_weights)), device="cpu")
    assert backend.name in ("onnxruntime", "torch")
    assert "backend auto ->" in srdb_log.text and "tensorrt" in srdb_log.text


def test_missing_and_corrupt_files_give_one_line_errors(tmp_path):
    with pytest.raises(BackendError, match=r"missing\.safetensors: weight file not found"):
        create_backend("torch", ModelFiles(weights=str(tmp_path / "missing.safetensors")), "cpu")
    with pytest.raises(BackendError, match=r"nowhere_deblur\.onnx: ONNX file not found.*srdb export"):
        OnnxRuntimeBackend(ModelFiles(onnx=str(tmp_path / "nowhere_{task}.onnx")), "cpu").infer(
            "deblur", np.zeros((1, 3, 8, 8), np.float32)
        )
    bad = tmp_path / "bad_deblur.onnx"
    bad.write_bytes(b"this is not a protobuf")
    with pytest.raises(BackendError, match=r"bad_deblur\.onnx: not a loadable ONNX model") as err:
        OnnxRuntimeBackend(ModelFiles(onnx=str(tmp_path / "bad_{task}.onnx")), "cpu").infer(
            "deblur", np.zeros((1, 3, 8, 8), np.float32)
        )
    assert "\n" not in str(err.value)
    with pytest.raises(BackendError, match="backend must be one of"):
        create_backend("openvino", ModelFiles())


def test_cuda_requests_fail_clearly_without_a_gpu(student_weights):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(BackendError, match="no CUDA GPU"):
        TorchBackend(student_weights, "cuda")


@pytest.mark.cuda
def test_tensorrt_backend(tmp_path, student_weights):
    trt = pytest.importorskip(
        "tensorrt", reason="TensorRT is not installable on this machine (needs NVIDIA TensorRT 10)"
    )
    import torch

    if not torch.cuda.is_available():
        pytest.skip("TensorRT needs a CUDA GPU")
    files = ModelFiles(weights=str(student_weights), engine=str(tmp_path / "s_{task}.engine"))
    backend = TensorRTBackend(files)
    x = np.random.default_rng(7).random((1, 3, 64, 64), dtype=np.float32)
    out = backend.infer("deblur", x)["deblur"]
    ref = TorchBackend(student_weights, "cpu").infer("deblur", x)["deblur"]
    assert np.abs(out - ref).max() < 0.05
    info = json.loads((tmp_path / "s_deblur.engine.json").read_text())
    assert info["tensorrt_version"] == trt.__version__


@pytest.mark.cuda
def test_cuda_fast_path_matches_eager_fp32(student_weights):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (the CUDA-graph fast path)")
    x = np.random.default_rng(8).random((1, 3, 64, 96), dtype=np.float32)
    fast = TorchBackend(student_weights, "cuda", "fp16")
    ref = TorchBackend(student_weights, "cpu", "fp32")
    for task in ("deblur", "sr", "both"):
        a, b = fast.infer(task, x), ref.infer(task, x)
        again = fast.infer(task, x)  # replay of the captured graph
        for key in a:  # fp16 keeps ~3 significant digits: outputs of noise reach |14|, so the bound is relative
            np.testing.assert_allclose(a[key], b[key], rtol=5e-3, atol=2e-2)
            assert np.array_equal(a[key], again[key])
    assert len(fast._graphs) == 3


def test_tensorrt_missing_is_reported():
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(BackendError, match="tensorrt"):
            TensorRTBackend(ModelFiles(engine="x.engine"))
        return
    pytest.skip("tensorrt is installed here; covered by test_tensorrt_backend")


def test_engine_sidecar_mismatch_is_detected(tmp_path, monkeypatch):
    from srdb_ros.core.files import file_digest
    from srdb_ros.export import tensorrt_build

    engine = tmp_path / "e.engine"
    engine.write_bytes(b"x")
    digest = file_digest(engine)
    info = tensorrt_build.EngineInfo("10.0.1", "NVIDIA RTX A4500 Embedded", "8.6", "abc", "deblur", "fp16", {}, "t")
    info.save(engine)
    monkeypatch.setattr(tensorrt_build, "current_platform", lambda: ("10.0.1", "NVIDIA RTX A4500 Embedded", "8.6"))
    assert "no engine checksum" in tensorrt_build.engine_mismatch(engine)
    info.engine_sha256 = digest
    info.save(engine)
    monkeypatch.setattr(tensorrt_build, "current_platform", lambda: ("10.3.0", "NVIDIA H100", "9.0"))
    assert "TensorRT 10.0.1" in tensorrt_build.engine_mismatch(engine)
    monkeypatch.setattr(tensorrt_build, "current_platform", lambda: ("10.0.1", "NVIDIA H100", "9.0"))
    assert "RTX A4500" in tensorrt_build.engine_mismatch(engine)
    monkeypatch.setattr(tensorrt_build, "current_platform", lambda: ("10.0.1", "NVIDIA RTX A4500 Embedded", "8.6"))
    assert tensorrt_build.engine_mismatch(engine) is None
    engine.write_bytes(b"y")  # swapped after the build: refused before TensorRT ever sees it
    assert "does not match the checksum" in tensorrt_build.engine_mismatch(engine)
    with pytest.raises(tensorrt_build.EngineError, match="rebuild"):
        tensorrt_build.EngineInfo.load(tmp_path / "other.engine")


@pytest.mark.slow
def test_bench_json_has_ratio_column(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "srdb_ros.cli",
            "bench",
            "--task",
            "sr",
            "--backend",
            "torch",
            "--device",
            "cpu",
            "--sizes",
            "64x48",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--mode",
            "ros",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    records = report["records"]
    drift = report["quality_vs_fp32"]
    assert {d["task"] for d in drift} == {"deblur", "sr"}
    assert all(d["psnr_diff_db_max_abs"] < 0.05 for d in drift)  # the device path vs the fp32 NumPy path
    ours = [r for r in records if r["backend"] != "reference"]
    assert {r["size"] for r in records} == {"64x48"}  # exactly the sizes asked for
    assert {r["mode"] for r in ours} == {"model", "model_unfused_aff", "end_to_end", "end_to_end_numpy", "ros"}
    assert {r["mode"] for r in records if r["backend"] == "reference"} == {"model", "end_to_end"}
    for r in ours:
        assert r["median_ms"] > 0 and r["p95_ms"] >= r["median_ms"] and r["ratio_vs_reference"] > 0
    ros = next(r for r in ours if r["mode"] == "ros")
    assert {"convert", "preprocess", "infer", "postprocess", "to_message"} <= set(ros["stages_ms"])


def test_force_engine_update_reaches_tensorrt_under_auto(monkeypatch, student_weights):
    from srdb_ros.inference import backends

    calls = []

    class RecordingTensorRT:
        def __init__(self, files, rebuild=True, force_rebuild=False, device="cuda"):
            calls.append(force_rebuild)
            raise backends.BackendError("tensorrt is not installed (test double)")

    monkeypatch.setattr(backends, "TensorRTBackend", RecordingTensorRT)
    files = backends.ModelFiles(weights=str(student_weights), engine="/nonexistent/x_{task}.engine")
    backend = backends.create_backend("auto", files, "auto", "fp16", force_engine_update=True)
    assert calls == [True] and backend is not None  # asked with force_rebuild, then fell back
    with pytest.raises(backends.BackendError):
        backends.create_backend("tensorrt", files, force_engine_update=True)
    assert calls == [True, True]


@pytest.mark.slow
def test_srdb_enhance_writes_results_and_side_by_side_panels(tmp_path, student_weights):
    import cv2

    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "grey16.png"), np.full((40, 52), 30000, np.uint16))
    cv2.imwrite(str(folder / "colour.png"), np.random.default_rng(0).integers(0, 256, (36, 44, 3), dtype=np.uint8))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "srdb_ros.cli",
            "enhance",
            str(folder),
            "--out",
            str(tmp_path / "out"),
            "--task",
            "both",
            "--model",
            str(student_weights),
            "--backend",
            "torch",
            "--side-by-side",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    sr = cv2.imread(str(tmp_path / "out" / "colour_super_resolved.png"), cv2.IMREAD_UNCHANGED)
    deblurred = cv2.imread(str(tmp_path / "out" / "grey16_deblurred.png"), cv2.IMREAD_UNCHANGED)
    assert sr.shape == (144, 176, 3) and deblurred.shape == (40, 52) and deblurred.dtype == np.uint16
    panel = cv2.imread(str(tmp_path / "out" / "colour_super_resolved_side_by_side.png"))
    assert panel.shape[1] == 2 * 176 + 6


@pytest.mark.parametrize("task", ["deblur", "sr", "both"])
@pytest.mark.parametrize(
    "dtype, order, shape",
    [
        (np.uint8, "rgb", (37, 51, 3)),
        (np.uint8, "bgr", (40, 44, 3)),
        (np.uint8, "mono", (29, 33)),
        (np.uint16, "mono", (31, 45)),
        (np.uint16, "rgb", (24, 30, 3)),
        (np.float32, "mono", (26, 34)),
    ],
)
def test_device_path_matches_the_numpy_path(student_weights, task, dtype, order, shape):
    """Issue 17: pre/post-processing as torch ops on the backend's device gives the NumPy path's images within
    one grey level (one count for 16-bit, 1e-3 of the range for 32FC1)."""
    rng = np.random.default_rng(5)
    if dtype == np.uint8:
        image = rng.integers(0, 256, shape, dtype=np.uint8)
    elif dtype == np.uint16:
        image = rng.integers(2000, 9000, shape).astype(np.uint16)
    else:
        image = (280 + 40 * rng.random(shape)).astype(np.float32)
    backend = TorchBackend(str(student_weights), "cpu")
    radiometric = True if dtype == np.float32 else None
    frame = [Frame(image, task, order if order != "mono" else "rgb", radiometric)]
    numpy_path = Enhancer(backend, device_processing=False).enhance_batch(frame)[0]
    device_path = Enhancer(backend, device_processing=True).enhance_batch(frame)[0]
    for name in ("deblurred", "super_resolved"):
        a, b = getattr(numpy_path, name), getattr(device_path, name)
        assert (a is None) == (b is None)
        if a is None:
            continue
        assert a.dtype == b.dtype and a.shape == b.shape
        tolerance = 1e-3 * 40 if dtype == np.float32 else 1
        assert np.abs(a.astype(np.float64) - b.astype(np.float64)).max() <= tolerance, name


def test_device_percentiles_match_numpy():
    import torch

    from srdb_ros.inference.device_processing import percentiles

    rng = np.random.default_rng(6)
    narrow = np.concatenate([np.full(5000, 7), rng.integers(300, 340, 4000), [65535] * 3])  # ties, a gap, the top
    for values in (rng.integers(0, 65535, 10007).astype(np.float32), rng.permutation(narrow).astype(np.float32)):
        for qs in ((1.0, 99.0), (0.0, 100.0), (2.5, 97.3), (49.99, 50.01)):
            expected = np.percentile(values, qs)
            for levels in (None, 65536):  # selection, and the histogram of 16-bit counts
                lo, hi = percentiles(torch.from_numpy(values), qs, levels)
                np.testing.assert_allclose([float(lo), float(hi)], expected, rtol=1e-6, err_msg=f"{levels} {qs}")


FRAME_FORMATS = [
    (np.uint8, "rgb", (37, 51, 3)),
    (np.uint8, "bgr", (40, 44, 3)),
    (np.uint8, "mono", (29, 33)),
    (np.uint16, "mono", (31, 45)),
    (np.uint16, "rgb", (24, 30, 3)),
]


def _integer_frame(dtype, shape, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return rng.integers(2000, 9000, shape).astype(np.uint16)


@pytest.mark.parametrize("task", ["deblur", "sr", "both"])
@pytest.mark.parametrize("dtype, order, shape", FRAME_FORMATS)
def test_frame_pipeline_matches_the_numpy_path(student_weights, task, dtype, order, shape):
    """Issue 17: a whole frame as one function of device tensors (what CUDA captures as one graph) gives the
    NumPy path's images within one grey level, for frame after frame of its format."""
    from srdb_ros.inference.device_processing import DeviceProcessor, FramePipeline

    backend = TorchBackend(str(student_weights), "cpu")
    numpy_path = Enhancer(backend, device_processing=False)
    color = order if order != "mono" else "rgb"
    processor = DeviceProcessor(backend.device, backend.dtype, backend.multiple)
    pipeline = FramePipeline(processor, backend, task, _integer_frame(dtype, shape, 0), color, numpy_path.options.agc)
    assert pipeline.graph is None  # nothing is captured on CPU
    for seed in (1, 2):
        image = _integer_frame(dtype, shape, seed)
        expected = numpy_path.enhance_batch([Frame(image, task, color)])[0]
        outs = pipeline.run(image)
        assert set(outs) == set(output_tasks(task))
        for name, out in outs.items():
            ref = expected.deblurred if name == "deblur" else expected.super_resolved
            assert out.dtype == ref.dtype and out.shape == ref.shape
            assert np.abs(out.astype(np.int64) - ref.astype(np.int64)).max() <= 1, name
    with pytest.raises(ValueError, match="takes"):
        pipeline.run(_integer_frame(dtype, (shape[0] + 1, *shape[1:]), 3))


def test_frame_pipeline_refuses_float_frames(student_weights):
    from srdb_ros.inference.device_processing import DeviceProcessor, FramePipeline

    backend = TorchBackend(str(student_weights), "cpu")
    processor = DeviceProcessor(backend.device, backend.dtype, backend.multiple)
    with pytest.raises(ValueError, match="uint8 or uint16"):
        FramePipeline(processor, backend, "deblur", np.zeros((8, 8), np.float32), "rgb", Enhancer(backend).options.agc)


@pytest.mark.parametrize("dtype, order, shape", [FRAME_FORMATS[0], FRAME_FORMATS[3]])
@pytest.mark.cuda
def test_captured_frame_graph_matches_eager_device_path(student_weights, dtype, order, shape):
    """Issue 17: on CUDA, the captured whole-frame graph gives the eager device path's images, frame after
    frame (the graph's input buffer is refilled each time), and the Enhancer uses it for integer frames."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (whole-frame CUDA graphs)")
    captured = Enhancer(TorchBackend(student_weights, "cuda", "fp16"))
    eager = Enhancer(TorchBackend(student_weights, "cuda", "fp16", cuda_graphs=False))
    color = order if order != "mono" else "rgb"
    for seed in (1, 2, 3):
        image = _integer_frame(dtype, shape, seed)
        a = captured.enhance_batch([Frame(image, "both", color)])[0]
        b = eager.enhance_batch([Frame(image, "both", color)])[0]
        for name in ("deblurred", "super_resolved"):
            diff = np.abs(getattr(a, name).astype(np.int64) - getattr(b, name).astype(np.int64))
            assert diff.max() <= 1, name
    (pipeline,) = captured._pipelines.values()
    assert pipeline.graph is not None
    captured.close()
    assert not captured._pipelines


@pytest.mark.slow
def test_compiled_package_is_used_for_its_size_and_refused_when_it_does_not_match(
    tmp_path, student_weights, capture_logger
):
    """Issue 17: `srdb compile` makes an AOTInductor package with a description; the torch backend loads it in
    well under a second, gives the eager outputs for the compiled size, and skips a package that does not match."""
    import time

    import torch

    from srdb_ros.export.compiled import CompiledInfo

    weights = tmp_path / "student.safetensors"
    weights.write_bytes(student_weights.read_bytes())
    out = subprocess.run(
        [sys.executable, "-m", "srdb_ros.cli", "compile", "--model", str(weights), "--task", "sr", "--size", "40x32"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr
    package = tmp_path / "student-sr-40x32-cpu.pt2"
    info = CompiledInfo.load(package)
    assert (info.task, info.width, info.height, info.precision) == ("sr", 40, 32, "fp32")
    assert info.torch_version == torch.__version__
    assert sorted(p.name for p in tmp_path.iterdir()) == [package.name, package.name + ".json", weights.name]

    started = time.monotonic()
    compiled = create_backend("torch", ModelFiles(weights=str(weights), compiled=str(package)), "cpu")
    assert time.monotonic() - started < 30 and "1 compiled" in compiled.describe()
    eager = TorchBackend(str(weights), "cpu")
    x = np.random.default_rng(8).random((1, 3, 32, 40), dtype=np.float32)
    calls = []
    runner = compiled._compiled[("sr", (1, 3, 32, 40))]
    compiled._compiled[("sr", (1, 3, 32, 40))] = lambda t: calls.append(t.shape) or runner(t)
    np.testing.assert_allclose(compiled.infer("sr", x)["sr"], eager.infer("sr", x)["sr"], atol=1e-4)
    assert calls  # the package ran
    y = np.random.default_rng(9).random((1, 3, 36, 40), dtype=np.float32)
    np.testing.assert_allclose(compiled.infer("sr", y)["sr"], eager.infer("sr", y)["sr"], atol=1e-5)  # eager
    assert len(calls) == 1

    sidecar = CompiledInfo.sidecar(package)
    described = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps(dict(described, torch_version="1.0.0")))
    srdb_log = capture_logger("srdb_ros.inference.backends")
    stale = TorchBackend(str(weights), "cpu", packages=(str(package),))
    assert not stale._compiled and "compiled with torch 1.0.0" in srdb_log.text
    sidecar.write_text(json.dumps(described))
    package.write_bytes(package.read_bytes()[:-10] + b"0123456789")
    srdb_log.clear()
    damaged = TorchBackend(str(weights), "cpu", packages=(str(package),))
    assert not damaged._compiled and "damaged or replaced" in srdb_log.text


def test_bench_times_the_camera_batches_as_their_frames(monkeypatch):
    from srdb_ros.benchmark import bench

    monkeypatch.setitem(bench.PAPER_INPUT_SIZES, "deblur", (40, 32))
    opts = bench.BenchOptions(task="deblur", backend="torch", device="cpu", repeats=2, warmup=0, quality=False)
    records, _ = bench.run_bench(opts)
    pair = [r for r in records if r.mode == bench.EO_IR_MODE]
    assert len(pair) == 1 and pair[0].size == "40x32"
    # FPS counts both frames; the record rounds it to 2 decimals (0.005 is 0.15 % of 3.3 FPS on a loaded machine)
    assert pair[0].fps == pytest.approx(2e3 / pair[0].median_ms, rel=1e-3, abs=0.006)
    reference = next(r for r in records if r.backend == "reference" and r.mode == "end_to_end")
    assert pair[0].ratio_vs_reference == pytest.approx(2 * reference.median_ms / pair[0].median_ms, rel=1e-2)
    (four,) = [r for r in records if r.mode == bench.FOUR_CAMERAS_MODE]
    assert four.fps == pytest.approx(4e3 / four.median_ms, rel=1e-3, abs=0.006)  # FPS counts all four frames


def test_a_cpu_backend_runs_equal_frames_in_calls_of_at_most_two(student_weights):
    """On a CPU a batch of 4 costs more per frame than two calls of 2 (docs/performance.md): the Enhancer splits."""
    backend = TorchBackend(student_weights, "cpu")
    calls = []
    infer = backend.infer_tensor

    def counted(task, x, *args):
        calls.append(x.shape[0])
        return infer(task, x, *args)

    backend.infer_tensor = counted
    frame = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    results = Enhancer(backend).enhance_batch([Frame(frame, "deblur")] * 5)
    assert calls == [2, 2, 1] and [r.batch for r in results] == [2, 2, 2, 2, 1]
    single = Enhancer(backend).enhance_batch([Frame(frame, "deblur")])[0]
    assert np.abs(results[0].deblurred.astype(int) - single.deblurred.astype(int)).max() <= 1
