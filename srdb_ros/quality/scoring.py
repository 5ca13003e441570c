"""Scoring a model on image pairs against the task's baseline (blurry input / bicubic upscale)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.contract import SCALE, full_scale
from ..core.imaging import bicubic_resize
from ..data.blur import MotionBlurSynthesizer, synthesizer_for
from ..data.datasets import list_images, read_image, to_image, to_tensor
from .metrics import quality


@dataclass
class Pair:
    name: str
    input: np.ndarray  # HxWx3 float32 in [0, 1]
    target: np.ndarray
    kernel: np.ndarray | None = None  # the blur kernel that made ``input``, where known (the estimator's truth)


def center_crop(img: np.ndarray, size: int, multiple: int = 1) -> np.ndarray:
    """Centre crop to at most ``size`` per side, rounded down to ``multiple``."""
    h, w = img.shape[:2]
    ch = min(h, size) // multiple * multiple if size else h // multiple * multiple
    cw = min(w, size) // multiple * multiple if size else w // multiple * multiple
    y, x = (h - ch) // 2, (w - cw) // 2
    return img[y : y + ch, x : x + cw]


EVAL_BLUR = {"min_length": 15.0, "max_length": 45.0}  # `srdb score`'s realistic test blur (seeded)


def eval_synthesizer(model: str = "camera", seed: int = 1234, min_length: float = 15.0, max_length: float = 45.0):
    """The test blur: EO camera blur (``camera``) or microbolometer smear (``thermal``) of the given lengths."""
    if model not in ("camera", "thermal"):
        raise ValueError(f"blur model must be camera or thermal, not {model!r}")
    domain = "ir" if model == "thermal" else "eo"
    return synthesizer_for(domain, {"min_length": min_length, "max_length": max_length}, seed)


def sharp_pair(name: str, image: np.ndarray) -> Pair:
    """A sharp frame as its own target, with a point kernel (no blur): how much a model changes what it should
    leave alone."""
    return Pair(name, image, image, np.ones((1, 1), np.float32))


def deblur_pairs_from_sharp(
    folder, seed: int = 1234, max_images: int = 0, crop: int = 0, synthesizer: MotionBlurSynthesizer | None = None
) -> list[Pair]:
    """Blur/sharp pairs from a folder of sharp frames with seeded synthetic blur (fixed per image index), each with
    its kernel."""
    synth = synthesizer or MotionBlurSynthesizer(seed=seed)
    files = list_images(folder)[: max_images or None]
    pairs = []
    for i, path in enumerate(files):
        sharp = center_crop(read_image(path), crop)
        pairs.append(Pair(path.name, synth.apply(sharp, i), sharp, synth.kernel(i)))
    return pairs


def deblur_pairs_from_folders(folder) -> list[Pair]:
    """Real pairs: ``<folder>/blur/*`` and ``<folder>/sharp/*`` with the same names."""
    folder = Path(folder)
    return [Pair(b.name, read_image(b), read_image(folder / "sharp" / b.name)) for b in list_images(folder / "blur")]


def sr_pairs_from_hr(
    folder,
    scale: int = SCALE,
    max_images: int = 0,
    crop: int = 0,
    synthesizer: MotionBlurSynthesizer | None = None,
) -> list[Pair]:
    """LR/HR pairs: HR cropped to a multiple of ``scale``, LR by antialiased bicubic (blurred first with a
    ``synthesizer``)."""
    synth = synthesizer
    pairs = []
    for i, path in enumerate(list_images(folder)[: max_images or None]):
        hr = center_crop(read_image(path), crop, scale)
        source = synth.apply(hr, i) if synth else hr
        lr = bicubic_resize(source, 1.0 / scale)
        pairs.append(Pair(path.name, lr, hr))
    return pairs


@torch.no_grad()
def run_model(model, img: np.ndarray, task: str) -> np.ndarray:
    """One HxWx3 float image through a PyTorch model for ``deblur`` or ``sr``."""
    return run_model_with_blur(model, img, task)[0]


def run_model_with_blur(model, img: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`run_model`, and the model's blur estimate (x, y, length in pixels) when it has an estimator."""
    device = next(model.parameters()).device
    x = to_tensor(img)[None].to(device)
    out = model(x, task)
    y = full_scale(out.deblur) if task == "deblur" else out.sr
    blur = getattr(out, "blur", None)
    return to_image(y[0].float()), None if blur is None else blur[0].detach().float().cpu().numpy()


def baseline(pair: Pair, task: str, scale: int = SCALE) -> np.ndarray:
    if task == "deblur":
        return pair.input
    return bicubic_resize(pair.input, float(scale))


def score(model, pairs: list[Pair], task: str, scale: int = SCALE) -> dict:
    """Per-image and mean PSNR/SSIM of the model and of the baseline."""
    was_training = model.training
    model.eval()
    rows = []
    for pair in pairs:
        out, blur = run_model_with_blur(model, pair.input, task)
        m = quality(out, pair.target, task, scale)
        b = quality(baseline(pair, task, scale), pair.target, task, scale)
        rows.append(
            {
                "name": pair.name,
                "model_psnr": m["psnr"],
                "model_ssim": m["ssim"],
                "baseline_psnr": b["psnr"],
                "baseline_ssim": b["ssim"],
                "model_mean_shift": float((out.mean() - pair.target.mean()) * 255.0),  # grey levels of 255
                "blur_estimate": None if blur is None else [float(v) for v in blur],
            }
        )
    model.train(was_training)
    mean = {
        k: float(np.mean([r[k] for r in rows])) for k in ("model_psnr", "model_ssim", "baseline_psnr", "baseline_ssim")
    }
    return {**mean, "count": len(rows), "task": task, "images": rows}


@torch.no_grad()
def fig9(
    model, span, hr_folder, synthesizer: MotionBlurSynthesizer | None = None, max_images: int = 0, crop: int = 0
) -> dict:
    """x4 SR of motion-blurred low-resolution frames (blur, then downscale) vs the sharp HR frame: the integrated
    model, a standalone SPAN and bicubic, Y-channel PSNR/SSIM with a 4-pixel border."""
    model.eval()
    span.eval()
    pairs = sr_pairs_from_hr(hr_folder, SCALE, max_images, crop, synthesizer or eval_synthesizer())
    rows = {"integrated": [], "standalone_span": [], "bicubic": []}
    for pair in pairs:
        x = to_tensor(pair.input)[None]
        outputs = {
            "integrated": run_model(model, pair.input, "sr"),
            "standalone_span": to_image(span(x)[0]),
            "bicubic": baseline(pair, "sr"),
        }
        for key, out in outputs.items():
            rows[key].append(quality(out, pair.target, "sr"))
    return {
        key: {"psnr": float(np.mean([r["psnr"] for r in v])), "ssim": float(np.mean([r["ssim"] for r in v]))}
        for key, v in rows.items()
    } | {"count": len(pairs)}


@dataclass(kw_only=True)
class ScoringSelection:
    """The model, the test blur and the images a scoring command uses (shared by score and fig9)."""

    model: str | None = None  # default: the bundled student
    random_init: bool = False
    blur_seed: int = 1234
    blur_length: tuple[float, float] = (15.0, 45.0)
    blur_model: str = "camera"
    max_images: int = 0
    crop: int = 0
    json: bool = False


@dataclass(kw_only=True)
class Fig9Options(ScoringSelection):
    span: str
    hr: str


def fig9_command(opts: Fig9Options) -> int:
    """``srdb fig9``."""
    from ..models import load_model_or_config, load_span

    result = fig9(
        load_model_or_config(opts.model, opts.random_init),
        load_span(opts.span),
        opts.hr,
        eval_synthesizer(opts.blur_model, opts.blur_seed, *opts.blur_length),
        opts.max_images,
        opts.crop,
    )
    if opts.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"x4 SR of motion-blurred LR frames ({result['count']} images, Y channel, 4-px border):")
    for key in ("integrated", "standalone_span", "bicubic"):
        print(f"  {key:16s} PSNR {result[key]['psnr']:.2f} dB  SSIM {result[key]['ssim']:.4f}")
    return 0


@dataclass(kw_only=True)
class ScoreOptions(ScoringSelection):
    task: str | None = None
    suite: str | None = None
    data_root: str = "../shared/data"
    pairs: str | None = None
    hr: str | None = None
    blur_lr: bool = False


def score_command(opts: ScoreOptions) -> int:
    """``srdb score`` on one test set (``--suite``: :func:`srdb_ros.quality.suite.suite_command`)."""
    from ..models import load_model_or_config

    model = load_model_or_config(opts.model, opts.random_init).eval()
    synth = eval_synthesizer(opts.blur_model, opts.blur_seed, *opts.blur_length)
    if opts.task == "deblur":
        if opts.pairs and (Path(opts.pairs) / "blur").is_dir():
            pairs = deblur_pairs_from_folders(opts.pairs)
        else:
            folder = opts.pairs or opts.hr
            if not folder:
                raise ValueError("give --pairs DIR (with blur/ and sharp/) or a sharp folder with --pairs/--hr")
            pairs = deblur_pairs_from_sharp(folder, max_images=opts.max_images, crop=opts.crop, synthesizer=synth)
    else:
        if not opts.hr:
            raise ValueError("--task sr needs --hr DIR (high-resolution frames)")
        pairs = sr_pairs_from_hr(
            opts.hr, SCALE, opts.max_images, opts.crop, synthesizer=synth if opts.blur_lr else None
        )
    if not pairs:
        raise ValueError(f"no images found in {opts.pairs or opts.hr}")
    result = score(model, pairs, opts.task)
    if opts.json:
        print(json.dumps(result, indent=2))
        return 0
    baseline_name = "blurry input" if opts.task == "deblur" else "bicubic"
    convention = "RGB" if opts.task == "deblur" else "Y channel, 4-px border"
    print(f"{'image':40s} {'model PSNR':>10s} {'SSIM':>6s} {baseline_name + ' PSNR':>18s} {'SSIM':>6s}")
    for r in result["images"]:
        print(
            f"{r['name'][:40]:40s} {r['model_psnr']:10.2f} {r['model_ssim']:6.3f} {r['baseline_psnr']:18.2f} "
            f"{r['baseline_ssim']:6.3f}"
        )
    print(
        f"{'mean (' + str(result['count']) + ' images, ' + convention + ')':40s} {result['model_psnr']:10.2f} "
        f"{result['model_ssim']:6.3f} {result['baseline_psnr']:18.2f} {result['baseline_ssim']:6.3f}"
    )
    return 0
