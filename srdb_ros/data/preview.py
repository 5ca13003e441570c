"""``srdb blur-preview``: a picture of sample kernels and blurred crops of the training/test blur."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .blur import MotionBlurSynthesizer, ThermalBlurSynthesizer
from .datasets import read_image


def blur_preview(eo_image: Path, ir_image: Path, out: Path, seed: int = 0, count: int = 6, crop: int = 256) -> Path:
    """Rows: EO kernels, EO blurred crops, IR (thermal smear) kernels, IR blurred crops; one draw per column."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [
        ("EO", MotionBlurSynthesizer(seed=seed), _centre(read_image(eo_image), crop)),
        ("IR", ThermalBlurSynthesizer(seed=seed), _centre(read_image(ir_image), crop)),
    ]
    fig, axes = plt.subplots(4, count, figsize=(2.2 * count, 9.2))
    for r, (name, synth, image) in enumerate(rows):
        for c in range(count):
            index = c * 7 + 1
            kind, length, _, _ = synth.draw(index)
            kernel = synth.kernel(index)
            canvas = np.zeros((synth.max_kernel_size, synth.max_kernel_size), np.float32)
            o = (canvas.shape[0] - kernel.shape[0]) // 2
            canvas[o : o + kernel.shape[0], o : o + kernel.shape[1]] = kernel / kernel.max()
            axes[2 * r, c].imshow(canvas, cmap="inferno", interpolation="nearest")
            axes[2 * r, c].set_title(f"{name} {kind}, {length:.0f} px", fontsize=9)
            axes[2 * r + 1, c].imshow(synth.apply(image, index), cmap="gray" if name == "IR" else None)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        "Synthetic blur draws (kernel in a fixed 99 px frame, sharp frame's point at its centre; crops 256 px): camera "
        "shake / linear / curved motion in linear light with sensor noise (EO, centroid at the centre);\n"
        "exponentially decaying microbolometer smear (IR, newest position at the centre, trail behind it)",
        fontsize=9,
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


def blur_preview_command(opts: BlurPreviewOptions) -> int:
    """``srdb blur-preview``."""
    from ..resources import share_dir

    samples = share_dir() / "samples"
    eo = Path(opts.eo) if opts.eo else samples / "eo" / "astronaut.png"
    ir = Path(opts.ir) if opts.ir else samples / "ir" / "hituav_0_60_40_0_01666.jpg"
    print(blur_preview(eo, ir, Path(opts.out), opts.seed))
    return 0
