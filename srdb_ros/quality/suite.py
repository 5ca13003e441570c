"""``srdb score --suite deblur``: the deblurring robustness suite.

Each row changes one formation choice at a time, on test frames only (never in a training split), and scores the
model against the blurry input. The rows:

- the project's test blur (``srdb score``'s: camera shake and platform motion, 15-45 px, with sensor noise) on
  BSD68, blurred in linear light and in display gamma (plain averaging of the sRGB values, as GOPRO's frames
  were made);
- a second shake generator written for the suite alone (:func:`suite_shake_kernel`: a smooth spline through a
  momentum random walk, drawn antialiased; nothing of the training synthesiser), 15-40 px, in display gamma and
  in linear light;
- the 8 real camera-shake kernels recorded by Levin et al. (CVPR 2009), each shifted to its centroid, on Sun-Hays
  frames (the Sun et al. ICCP 2013 protocol), in linear light and in display gamma;
- nearly sharp frames (0.5-2 px of the suite's shake, linear light, mild sensor noise: :data:`EO_SENSOR_NOISE`)
  and sharp frames (the model's output scored against its own input: nothing to undo);
- the real GOPRO blur/sharp pairs;
- thermal (HIT-UAV test split): the microbolometer smear, shutter shake (a cooled camera), nearly sharp (with
  :data:`IR_SENSOR_NOISE`).

Test frames: BSD68 and the HIT-UAV val split (never trained on), Sun-Hays after its first 16 frames (those are the
training runs' validation frames). The data root holds the layout of ``docs/blur.md``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..data.blur import blur_extent, linear_to_srgb, srgb_to_linear
from ..data.datasets import list_images, read_image
from .scoring import Pair, ScoreOptions, center_crop, eval_synthesizer, score, sharp_pair

SUITE_SEED = 2024
EO_SENSOR_NOISE = (2e-4, 5e-4)  # shot gain, read std in linear light: ~1.8 grey levels at mid grey
IR_SENSOR_NOISE = (0.0, 4e-3)  # NETD-like temporal noise, ~1 grey level
SUN_HAYS_VALIDATION_FRAMES = 16  # config/splits/eo_val.txt: the first 16 Sun-Hays frames select checkpoints


@dataclass(frozen=True)
class SuiteData:
    """Where the suite's test frames are, and how many of each row to use."""

    root: Path
    max_images: int = 12
    crop: int = 256

    def frames(self, folder: str, skip: int = 0, limit: int | None = None) -> list[tuple[str, np.ndarray]]:
        path = self.root / folder
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: test frames missing (the suite's data layout: docs/blur.md)")
        files = list_images(path)[skip:][: (limit or self.max_images) or None]
        if not files:
            raise FileNotFoundError(f"{path}: no test frames (after skipping {skip}; layout: docs/blur.md)")
        return [(f.name, center_crop(read_image(f), self.crop)) for f in files]


@dataclass(frozen=True)
class SuiteRow:
    name: str
    domain: str  # eo or ir
    make_pairs: Callable[[SuiteData], list[Pair]]
    identity: bool = False  # the input is the target (sharp frames): scored as the model's change to its input


# -- the suite's own shake generator (independent of data/blur.py's synthesiser) --------------------------------
def suite_shake_kernel(rng: np.random.Generator, length: float, supersample: int = 8) -> np.ndarray:
    """A camera-shake kernel of the given path length: a momentum random walk of 6-10 control points, a
    Catmull-Rom spline through them drawn antialiased on a supersampled canvas, filtered with a one-pixel tent (the
    image's linear interpolation: a path inside one pixel still spreads to its neighbours, as a sub-pixel shake
    does) and sampled at the pixel centres, normalised and shifted (sub-pixel) so its centroid is on the centre
    pixel."""
    points = int(rng.integers(6, 11))
    momentum = rng.uniform(0.3, 0.9)
    step = np.zeros(2)
    control = [np.zeros(2)]
    for _ in range(points - 1):
        step = momentum * step + (1 - momentum) * rng.standard_normal(2)
        control.append(control[-1] + step + 0.2 * rng.standard_normal(2))
    curve = _catmull_rom(np.asarray(control), 24)
    arc = np.sum(np.hypot(*np.diff(curve, axis=0).T))
    curve = (curve - curve.mean(axis=0)) * (length / max(arc, 1e-9))
    half = math.ceil(np.abs(curve).max()) + 2
    fine = 2 * half * supersample + 1  # pixel i's centre is fine sample i * supersample
    canvas = np.zeros((fine, fine), np.float32)
    pts = np.rint((curve + half) * supersample * 16).astype(np.int32)  # 4 fractional bits
    cv2.polylines(canvas, [pts.reshape(-1, 1, 2)], False, 1.0, thickness=1, lineType=cv2.LINE_AA, shift=4)
    if canvas.sum() == 0:  # a path shorter than a supersampled pixel: a point
        canvas[pts[0, 1] >> 4, pts[0, 0] >> 4] = 1.0
    tent = 1.0 - np.abs(np.arange(1 - supersample, supersample)) / supersample
    canvas = cv2.sepFilter2D(canvas, -1, tent, tent, borderType=cv2.BORDER_CONSTANT)
    kernel = canvas[::supersample, ::supersample].astype(np.float64)
    kernel /= kernel.sum()
    return centroid_centred(kernel).astype(np.float32)


def _catmull_rom(points: np.ndarray, per_segment: int) -> np.ndarray:
    padded = np.vstack([2 * points[0] - points[1], points, 2 * points[-1] - points[-2]])
    t = np.linspace(0.0, 1.0, per_segment, endpoint=False)[:, None]
    out = []
    for i in range(1, len(padded) - 2):
        p0, p1, p2, p3 = padded[i - 1], padded[i], padded[i + 1], padded[i + 2]
        out.append(
            0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (3 * p1 - p0 - 3 * p2 + p3) * t**3)
        )
    return np.vstack(out + [points[-1:]])


def centroid_centred(kernel: np.ndarray) -> np.ndarray:
    """The kernel shifted (bilinear, sub-pixel) so that its centroid is on the centre of an odd square canvas."""
    h, w = kernel.shape
    yy, xx = np.mgrid[:h, :w]
    cy, cx = (kernel * yy).sum() / kernel.sum(), (kernel * xx).sum() / kernel.sum()
    half = int(math.ceil(max(cy, h - 1 - cy, cx, w - 1 - cx))) + 1
    side = 2 * half + 1
    shift = np.float64([[1, 0, half - cx], [0, 1, half - cy]])
    out = cv2.warpAffine(kernel, shift, (side, side), flags=cv2.INTER_LINEAR, borderValue=0.0)
    return out / out.sum()


def blur_with(
    image: np.ndarray, kernel: np.ndarray, linear_light: bool, noise: tuple[float, float] = (0.0, 0.0), rng=None
) -> np.ndarray:
    """Blur an HxWx3 float image in [0, 1] in linear light or in its stored (display) values, then add
    Poisson-Gaussian noise ``(shot gain, read std)`` where the light added up."""
    x = srgb_to_linear(image) if linear_light else image
    x = cv2.filter2D(x, -1, kernel, borderType=cv2.BORDER_REFLECT)
    shot, read = noise
    if shot > 0 or read > 0:
        std = np.sqrt(np.maximum(shot * x, 0) + read * read)
        x = x + std * rng.standard_normal(x.shape).astype(np.float32)
    return linear_to_srgb(x) if linear_light else np.clip(x, 0.0, 1.0).astype(np.float32)


def levin_kernels(root: Path) -> list[np.ndarray]:
    """The 8 real camera-shake kernels of Levin et al. 2009, each shifted to its centroid (test only)."""
    path = root / "kernels" / "levin09_kernels.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the Levin et al. kernels are missing (docs/blur.md)")
    data = np.load(path)
    return [centroid_centred(data[f"kernel_{i}"].astype(np.float64)).astype(np.float32) for i in range(1, 9)]


# -- rows ----------------------------------------------------------------------------------------------------------
def _synth_rows(d: SuiteData, folder: str, model: str, formation: tuple[float, float, float]) -> list[Pair]:
    synth = dataclasses.replace(eval_synthesizer(model), formation_probs=formation)
    return [Pair(name, synth.apply(img, i), img, synth.kernel(i)) for i, (name, img) in enumerate(d.frames(folder))]


def _shake_rows(
    d: SuiteData,
    folder: str,
    lengths: tuple[float, float],
    linear_light: bool,
    seed: int,
    noise: tuple[float, float] = (0.0, 0.0),
) -> list[Pair]:
    pairs = []
    for i, (name, img) in enumerate(d.frames(folder)):
        rng = np.random.default_rng([SUITE_SEED, seed, i])
        kernel = suite_shake_kernel(rng, float(rng.uniform(*lengths)))
        pairs.append(Pair(name, blur_with(img, kernel, linear_light, noise, rng), img, kernel))
    return pairs


def _levin_rows(d: SuiteData, linear_light: bool) -> list[Pair]:
    kernels = levin_kernels(d.root)
    frames = d.frames("eo/sun_hays80", skip=SUN_HAYS_VALIDATION_FRAMES, limit=max(1, d.max_images // 3))
    return [
        Pair(f"{name}#k{k + 1}", blur_with(img, kernel, linear_light), img, kernel)
        for name, img in frames
        for k, kernel in enumerate(kernels)
    ]


def _gopro_pairs(d: SuiteData) -> list[Pair]:
    folder = d.root / "deblur_real" / "GoPro_DeepDeblur_samples" / "images"
    blurry = sorted(folder.glob("*_blur*.png"))
    if not blurry:
        raise FileNotFoundError(f"{folder}: the real GOPRO pairs (*_blur1.png, *_sharp1.png) are missing")
    return [Pair(b.name, read_image(b), read_image(b.with_name(b.name.replace("_blur", "_sharp")))) for b in blurry]


def _sharp(d: SuiteData) -> list[Pair]:
    return [sharp_pair(name, img) for name, img in d.frames("eo/bsd68")]


ROWS: tuple[SuiteRow, ...] = (
    SuiteRow("test blur, linear light (BSD68)", "eo", lambda d: _synth_rows(d, "eo/bsd68", "camera", (1, 0, 0))),
    SuiteRow("test blur, display gamma (BSD68)", "eo", lambda d: _synth_rows(d, "eo/bsd68", "camera", (0, 1, 0))),
    SuiteRow("suite shake 15-40 px, display gamma", "eo", lambda d: _shake_rows(d, "eo/bsd68", (15, 40), False, 1)),
    SuiteRow("suite shake 15-40 px, linear light", "eo", lambda d: _shake_rows(d, "eo/bsd68", (15, 40), True, 1)),
    SuiteRow("Levin kernels, linear light (Sun-Hays)", "eo", lambda d: _levin_rows(d, True)),
    SuiteRow("Levin kernels, display gamma (Sun-Hays)", "eo", lambda d: _levin_rows(d, False)),
    SuiteRow(
        "nearly sharp 0.5-2 px, linear, noise",
        "eo",
        lambda d: _shake_rows(d, "eo/bsd68", (0.5, 2), True, 2, EO_SENSOR_NOISE),
    ),
    SuiteRow("sharp frames (output vs input)", "eo", _sharp, identity=True),
    SuiteRow("real GOPRO pairs", "eo", _gopro_pairs),
    SuiteRow("thermal smear 15-45 px (HIT-UAV)", "ir", lambda d: _synth_rows(d, "ir/hituav_val", "thermal", (0, 1, 0))),
    SuiteRow("thermal shutter shake 15-40 px", "ir", lambda d: _shake_rows(d, "ir/hituav_val", (15, 40), False, 3)),
    SuiteRow(
        "thermal nearly sharp 0.5-2 px",
        "ir",
        lambda d: _shake_rows(d, "ir/hituav_val", (0.5, 2), False, 4, IR_SENSOR_NOISE),
    ),
)


def run_suite(model, data: SuiteData, rows: tuple[SuiteRow, ...] = ROWS) -> dict:
    """Every row's frame count, blurry and model PSNR/SSIM and gain; sharp rows add the model's PSNR against its
    input and its mean level shift in grey levels; the summary holds the worst row and the averages."""
    results = []
    for row in rows:
        pairs = row.make_pairs(data)
        result = score(model, pairs, "deblur")
        entry = {
            "row": row.name,
            "domain": row.domain,
            "frames": result["count"],
            "model_psnr": result["model_psnr"],
            "model_ssim": result["model_ssim"],
            "mean_shift_grey": float(np.mean([r["model_mean_shift"] for r in result["images"]])),
        }
        if row.identity:
            entry |= {"blurry_psnr": None, "blurry_ssim": None, "gain": None, **unchanged_summary(result["images"])}
        else:
            entry |= {
                "blurry_psnr": result["baseline_psnr"],
                "blurry_ssim": result["baseline_ssim"],
                "gain": result["model_psnr"] - result["baseline_psnr"],
            }
        if getattr(model, "blur_head", None) is not None:
            entry |= estimator_errors(pairs, result["images"], row.identity)
        results.append(entry)
    gains = [r for r in results if r["gain"] is not None]
    worst = min(gains, key=lambda r: r["gain"])
    summary = {
        "worst_row": worst["row"],
        "worst_gain": worst["gain"],
        "eo_mean_gain": float(np.mean([r["gain"] for r in gains if r["domain"] == "eo"])),
        "ir_mean_gain": float(np.mean([r["gain"] for r in gains if r["domain"] == "ir"])),
    }
    if getattr(model, "blur_head", None) is not None:
        summary["safe_min_blur_px"] = safe_min_blur_px(results)
    return {"rows": results, "summary": summary}


def unchanged_summary(images: list[dict]) -> dict:
    """How far a model changes frames it should leave alone: ``model_psnr`` of their pooled squared error (a frame
    returned unchanged adds 0; None when all are), the worst frame's PSNR and how many came back unchanged."""
    psnrs = [r["model_psnr"] for r in images]
    changed = [p for p in psnrs if math.isfinite(p)]
    pooled = float(np.mean([10 ** (-p / 10) for p in changed] + [0.0] * (len(psnrs) - len(changed))))
    return {
        "model_psnr": -10 * math.log10(pooled) if pooled > 0 else None,
        "worst_frame_psnr": min(changed) if changed else None,
        "frames_unchanged": len(psnrs) - len(changed),
    }


def estimator_errors(pairs: list[Pair], images: list[dict], identity: bool = False) -> dict:
    """The blur estimator against the kernels' truth (:func:`~srdb_ros.data.blur.blur_extent`): median absolute
    length error (px), median axis error (degrees) over blur >= 8 px, Spearman's rho of the true lengths and the
    mean estimate per kernel; and per frame, the estimate with its gain (the pass-through threshold's evidence;
    none for ``identity`` rows, whose frames have nothing to gain)."""
    entry: dict = {
        "frame_blur": [
            {"estimate_px": r["blur_estimate"][2], "gain": None if identity else r["model_psnr"] - r["baseline_psnr"]}
            for r in images
        ]
    }
    known = [(p, r) for p, r in zip(pairs, images) if p.kernel is not None]
    if not known:
        return entry
    truth = [blur_extent(p.kernel) for p, _ in known]
    estimates = np.array([r["blur_estimate"] for _, r in known])
    lengths = np.array([t.length for t in truth])
    axis_errors = [
        _axis_error(math.atan2(e[1], e[0]), t.angle) for e, t in zip(estimates, truth) if t.length >= AXIS_MIN_BLUR_PX
    ]
    entry |= {
        "blur_true_px": float(np.median(lengths)),
        "blur_length_error_px": float(np.median(np.abs(estimates[:, 2] - lengths))),
        "blur_axis_error_deg": float(np.median(axis_errors)) if axis_errors else None,
        "blur_rank_rho": _rank_rho(estimates[:, 2], lengths),
    }
    return entry


AXIS_MIN_BLUR_PX = 8.0  # the axis of a shorter blur is not reported (nor well defined for round shake)


def _axis_error(estimate: float, truth: float) -> float:
    """Angle between two axes (no sign), degrees in [0, 90]."""
    d = abs(estimate - truth) % math.pi
    return math.degrees(min(d, math.pi - d))


def _rank_rho(estimates: np.ndarray, lengths: np.ndarray) -> float | None:
    """Spearman's rho of the distinct true lengths (one per kernel) and the mean estimate of each."""
    kernels = np.unique(lengths)
    if len(kernels) < 3:
        return None
    means = np.array([estimates[lengths == k].mean() for k in kernels])
    ranks = [np.argsort(np.argsort(v)).astype(np.float64) for v in (means, kernels)]
    return float(np.corrcoef(*ranks)[0, 1])


def safe_min_blur_px(rows: list[dict]) -> float:
    """The largest pass-through threshold that passes no suite frame the model improves by more than 0.1 dB (a
    frame passes when its estimate is below the threshold): the smallest estimate among such frames."""
    helped = [f["estimate_px"] for r in rows for f in r.get("frame_blur", []) if (f["gain"] or 0.0) > 0.1]
    return float(min(helped)) if helped else float("inf")


def format_suite(result: dict) -> str:
    """The suite as a text table (PSNR in dB, RGB; gain = model - blurry)."""
    lines = [
        f"{'row':42s} {'frames':>6s} {'blurry PSNR/SSIM':>17s} {'model PSNR/SSIM':>16s} {'gain':>7s} {'shift':>6s}"
    ]
    for r in result["rows"]:
        blurry = "identical" if r["blurry_psnr"] is None else f"{r['blurry_psnr']:.2f}/{r['blurry_ssim']:.3f}"
        gain = "" if r["gain"] is None else f"{r['gain']:+.2f}"
        model = "unchanged" if r["model_psnr"] is None else f"{r['model_psnr']:.2f}"
        lines.append(
            f"{r['row']:42s} {r['frames']:6d} {blurry:>17s} {model:>10s}/{r['model_ssim']:.3f} "
            f"{gain:>7s} {r['mean_shift_grey']:+6.2f}"
        )
        if "frames_unchanged" in r:
            worst = "-" if r["worst_frame_psnr"] is None else f"{r['worst_frame_psnr']:.2f} dB"
            lines.append(f"{'':42s} worst frame {worst}, {r['frames_unchanged']} frame(s) returned unchanged")
    estimated = [r for r in result["rows"] if "blur_length_error_px" in r]
    if estimated:
        lines.append(
            f"\n{'blur estimator':42s} {'true px':>7s} {'length err px':>13s} {'axis err deg':>12s} {'rho':>5s}"
        )
        for r in estimated:
            axis = "-" if r["blur_axis_error_deg"] is None else f"{r['blur_axis_error_deg']:.1f}"
            rho = "-" if r["blur_rank_rho"] is None else f"{r['blur_rank_rho']:.2f}"
            lines.append(
                f"{r['row']:42s} {r['blur_true_px']:7.1f} {r['blur_length_error_px']:13.2f} {axis:>12s} {rho:>5s}"
            )
    s = result["summary"]
    if "safe_min_blur_px" in s:
        lines.append(
            f"safe min_blur_px: {s['safe_min_blur_px']:.2f} (the smallest estimate of a frame that gains > 0.1 dB)"
        )
    lines.append(
        f"worst row: {s['worst_row']} ({s['worst_gain']:+.2f} dB); mean gain EO {s['eo_mean_gain']:+.2f} dB, "
        f"thermal {s['ir_mean_gain']:+.2f} dB; shift = mean output minus target level, grey levels of 255"
    )
    return "\n".join(lines)


def suite_command(opts: ScoreOptions) -> int:
    """``srdb score --suite deblur``: the suite for the model of ``opts``, as a table or JSON."""
    from ..models import load_model_or_config

    model = load_model_or_config(opts.model, opts.random_init).eval()
    data = SuiteData(Path(opts.data_root), opts.max_images or SuiteData.max_images, opts.crop or SuiteData.crop)
    result = run_suite(model, data)
    print(json.dumps(result, indent=2) if opts.json else format_suite(result))
    return 0
