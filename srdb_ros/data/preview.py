"""``srdb blur-preview``: a picture of every blur family of a training config: kernels and blurred crops."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .blur import MotionBlurSynthesizer, ThermalBlurSynthesizer
from .datasets import read_image

# (column title, overrides of the configured synthesiser that force one family) per column
EO_FAMILIES = (
    ("shake, linear light", {"motion_probs": (1, 0, 0, 0), "formation_probs": (1, 0, 0)}),
    ("straight, display gamma", {"motion_probs": (0, 1, 0, 0), "formation_probs": (0, 1, 0)}),
    ("curved, tone curve", {"motion_probs": (0, 0, 1, 0), "formation_probs": (0, 0, 1)}),
    ("random walk", {"motion_probs": (0, 0, 0, 1), "formation_probs": (1, 0, 0)}),
    ("partial exposure", {"motion_probs": (1, 0, 0, 0), "partial_exposure_prob": 1.0}),
    ("saturated highlights", {"motion_probs": (0, 1, 0, 0), "formation_probs": (1, 0, 0), "highlight_prob": 1.0}),
    ("nearly sharp + noise", {"sharp_prob": 1.0, "noise_prob": 1.0, "shot_noise": 2e-3, "read_noise": 4e-3}),
    ("depth of field, nearly sharp", {"sharp_prob": 1.0, "defocus_prob": 1.0}),
)
IR_FAMILIES = (
    ("smear, straight", {"motion_probs": (0, 1, 0, 0), "shutter_prob": 0.0}),
    ("smear, curved", {"motion_probs": (0, 0, 1, 0), "shutter_prob": 0.0}),
    ("smear, shake", {"motion_probs": (1, 0, 0, 0), "shutter_prob": 0.0}),
    ("shutter, shake", {"motion_probs": (1, 0, 0, 0), "shutter_prob": 1.0}),
    ("shutter, random walk", {"motion_probs": (0, 0, 0, 1), "shutter_prob": 1.0}),
    ("smear, partial exposure", {"motion_probs": (0, 1, 0, 0), "shutter_prob": 0.0, "partial_exposure_prob": 1.0}),
    ("nearly sharp", {"sharp_prob": 1.0}),
    ("depth of field, nearly sharp", {"sharp_prob": 1.0, "defocus_prob": 1.0}),
)


def blur_preview(
    eo_image: Path, ir_image: Path, out: Path, eo_blur: dict, ir_blur: dict, seed: int = 0, crop: int = 256
) -> Path:
    """Rows: EO kernels, EO blurred crops, IR kernels, IR blurred crops; a column per family of the given
    ``data.blur`` / ``data.ir_blur`` sections (kernels in one fixed frame, the sharp frame's point at its centre)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [
        ("EO", MotionBlurSynthesizer.from_dict(eo_blur, seed), EO_FAMILIES, _centre(read_image(eo_image), crop)),
        ("IR", ThermalBlurSynthesizer.from_dict(ir_blur, seed), IR_FAMILIES, _centre(read_image(ir_image), crop)),
    ]
    count = max(len(EO_FAMILIES), len(IR_FAMILIES))
    frame = max(g[1].max_kernel_size for g in groups)
    fig, axes = plt.subplots(4, count, figsize=(2.2 * count, 9.4))
    for r, (name, base, families, image) in enumerate(groups):
        for c, (title, overrides) in enumerate(families):
            synth = dataclasses.replace(base, **overrides)
            index = 3 * c + 1
            draw = synth.draw(index)
            kernel = synth.kernel(index)
            canvas = np.zeros((frame, frame), np.float32)
            o = (frame - kernel.shape[0]) // 2
            canvas[o : o + kernel.shape[0], o : o + kernel.shape[1]] = kernel / kernel.max()
            axes[2 * r, c].imshow(canvas, cmap="inferno", interpolation="nearest")
            axes[2 * r, c].set_title(f"{name} {title}\n{draw.length:.1f} px", fontsize=8)
            axes[2 * r + 1, c].imshow(synth.pair(image, index)[1], cmap="gray" if name == "IR" else None)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        f"Training blur families (kernels in a fixed {frame} px frame; crops {crop} px). EO: Boracchi-Foi shake, "
        "accelerated straight and curved motion, smoothed random walk, partial exposure; linear light, display "
        "gamma or a tone curve; saturated highlights; sharp pairs; depth of field (in the target too).\n"
        "IR: microbolometer smear (newest position at the centre, trail behind it), shutter (cooled camera) shake, "
        "sharp pairs, depth of field; every draw adds the configured sensor noise unless it draws none",
        fontsize=8,
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def _centre(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    y, x = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return img[y : y + size, x : x + size]


@dataclass
class BlurPreviewOptions:
    out: str = "docs/blur_samples.png"
    eo: str | None = None
    ir: str | None = None
    seed: int = 0


def blur_preview_command(opts: BlurPreviewOptions, eo_blur: dict, ir_blur: dict) -> int:
    """``srdb blur-preview`` for the blur sections of a training config."""
    from ..resources import share_dir

    samples = share_dir() / "samples"
    eo = Path(opts.eo) if opts.eo else samples / "eo" / "astronaut.png"
    ir = Path(opts.ir) if opts.ir else samples / "ir" / "hituav_0_60_40_0_01666.jpg"
    print(blur_preview(eo, ir, Path(opts.out), eo_blur, ir_blur, opts.seed))
    return 0
