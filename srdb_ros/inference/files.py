"""``srdb enhance``: run the model on image files (any size, 8/16-bit, grey or colour) and write the results,
optionally beside their inputs for a side-by-side look (real blurry frames have no ground truth to score)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..core.contract import OUTPUT_NAMES, output_tasks
from ..core.files import atomic_output
from ..core.image_files import images_under
from ..resources import bundled_model
from .backends import ModelFiles, create_backend
from .enhancer import Enhancer


@dataclass
class EnhanceOptions:
    inputs: list[str]
    out: str
    task: str = "deblur"
    model: str | None = None  # default: the bundled student
    backend: str = "auto"
    device: str = "auto"
    side_by_side: bool = False
    max_side: int = 0  # downscale inputs with a longer side first (0 = keep)


def _files(inputs: list[str]) -> list[Path]:
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found += images_under(item)
        elif item.is_file():
            found.append(item)
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
    if not found:
        raise ValueError(f"no images found in {', '.join(inputs)}")
    return found


def _write(path: Path, image: np.ndarray) -> None:
    with atomic_output(path) as tmp:
        ok, buf = cv2.imencode(path.suffix or ".png", image)
        if not ok:
            raise ValueError(f"{path}: cannot encode the image")
        tmp.write_bytes(buf.tobytes())


def side_by_side(before: np.ndarray, after: np.ndarray, labels: tuple[str, str] = ("input", "output")) -> np.ndarray:
    """Input (scaled to the output's size) and output next to each other, each under a label strip."""
    as_8bit = [
        np.clip(a / 257.0, 0, 255).astype(np.uint8) if a.dtype == np.uint16 else a.astype(np.uint8)
        for a in (before, after)
    ]
    panels = []
    h, w = as_8bit[1].shape[:2]
    for image, label in zip(as_8bit, labels):
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_NEAREST) if image.shape[:2] != (h, w) else image
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image
        strip = np.full((28, w, 3), 255, np.uint8)
        cv2.putText(strip, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
        panels.append(np.vstack([strip, image]))
    return np.hstack([panels[0], np.full((h + 28, 6, 3), 255, np.uint8), panels[1]])


def enhance_command(opts: EnhanceOptions) -> int:
    """``srdb enhance``."""
    files = _files(opts.inputs)
    weights = opts.model or str(bundled_model())
    enhancer = Enhancer(create_backend(opts.backend, ModelFiles(weights=weights), opts.device, "fp16"))
    out_dir = Path(opts.out)
    for path in files:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise ValueError(f"{path}: cannot be read as an image")
        if image.ndim == 3 and image.shape[2] == 4:
            image = image[:, :, :3]
        if opts.max_side and max(image.shape[:2]) > opts.max_side:
            scale = opts.max_side / max(image.shape[:2])
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        result = enhancer.enhance(image, opts.task, "bgr")
        for task in output_tasks(opts.task):
            name = OUTPUT_NAMES[task]
            output = getattr(result, name)
            _write(out_dir / f"{path.stem}_{name}.png", output)
            if opts.side_by_side:
                panel = side_by_side(image, output, ("input", name.replace("_", " ")))
                _write(out_dir / f"{path.stem}_{name}_side_by_side.png", panel)
        print(f"{path} -> {out_dir} ({', '.join(f'{k} {v:.0f} ms' for k, v in result.timings_ms.items())})")
    return 0
