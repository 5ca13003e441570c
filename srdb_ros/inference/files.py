"""``srdb enhance``: run the model on image files (any size, 8/16-bit, grey or colour) and write the results,
optionally beside their inputs for a side-by-side look (real blurry frames have no ground truth to score)."""

from __future__ import annotations

import csv
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..core.contract import OUTPUT_NAMES, output_tasks
from ..core.files import atomic_output
from ..core.image_files import images_under
from ..resources import bundled_model
from .backends import ModelFiles, create_backend
from .enhancer import Enhancer, Frame, ProcessingOptions
from .memory import budget_bytes, max_pixels_for
from .processing import MIN_TILE_STEP

TILE_OVERLAP = 16  # input pixels, the node's default tile_overlap


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
    max_pixels: int = 0  # larger inputs are skipped; 0 = what the task fits in memory_budget_mb (the node's rule)
    memory_budget_mb: float = 0.0  # 0 = half of the memory available once the model is loaded
    tile: int = 0  # run inputs larger than this (pixels per side) in overlapping tiles; 0 = whole frames
    overwrite: bool = False
    min_blur_px: float = 0.0  # write frames estimated below this unchanged (the node's <cam>.min_blur_px); 0 = off


FRAMES_CSV = "frames.csv"  # one row per processed input: its results and the model's blur estimate


@dataclass(frozen=True)
class Job:
    """One input file and the results it will write (its folder layout kept under ``--out``)."""

    source: Path
    outputs: dict[str, Path]  # output name -> result path
    panels: dict[str, Path]  # output name -> side-by-side path (empty without --side-by-side)


def _files(inputs: list[str]) -> list[tuple[Path, Path]]:
    """(file, its path relative to the output folder) for every image named or found under a named folder."""
    found: list[tuple[Path, Path]] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found += [(f, f.relative_to(item)) for f in images_under(item)]
        elif item.is_file():
            found.append((item, Path(item.name)))
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
    if not found:
        raise ValueError(f"no images found in {', '.join(inputs)}")
    return found


def plan(opts: EnhanceOptions) -> list[Job]:
    """Every input and its result paths, checked before any model loads: the output folder must not hold the
    inputs (results would be read back as inputs), no two results may share a path, and existing results are
    kept unless ``--overwrite``."""
    out_dir = Path(opts.out)
    if opts.tile and opts.tile < 2 * TILE_OVERLAP + MIN_TILE_STEP:
        raise ValueError(f"--tile must be 0 (off) or at least {2 * TILE_OVERLAP + MIN_TILE_STEP} pixels")
    files = _files(opts.inputs)
    resolved_out = out_dir.resolve()
    for item in map(Path, opts.inputs):
        folder = item.resolve() if item.is_dir() else item.resolve().parent
        if resolved_out == folder or resolved_out in folder.parents or folder in resolved_out.parents:
            raise ValueError(f"--out {out_dir} overlaps the input folder {item}: choose a separate output folder")
    jobs, owners = [], {}
    for source, relative in files:
        stem = relative.with_suffix("")
        outputs = {name: out_dir / f"{stem}_{name}.png" for name in map(OUTPUT_NAMES.get, output_tasks(opts.task))}
        panels = {name: out_dir / f"{stem}_{name}_side_by_side.png" for name in outputs} if opts.side_by_side else {}
        for path in [*outputs.values(), *panels.values()]:
            if path in owners:
                raise ValueError(f"{source} and {owners[path]} would both write {path}: give them separately")
            owners[path] = source
        jobs.append(Job(source, outputs, panels))
    owners[out_dir / FRAMES_CSV] = "the frame table"
    existing = [path for path in owners if path.exists()]
    if existing and not opts.overwrite:
        raise FileExistsError(
            f"{existing[0]} exists ({len(existing)} of {len(owners)} results do): --overwrite replaces them"
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"--out {out_dir}: cannot create it ({exc.strerror})") from None
    if not os.access(out_dir, os.W_OK):
        raise PermissionError(f"--out {out_dir}: not writable")
    return jobs


def declared_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file's header, without decoding its pixels."""
    with Image.open(path) as image:
        return image.size


def _read(path: Path, max_side: int, limit: int) -> np.ndarray:
    """The image as OpenCV reads it (alpha dropped), downscaled to ``max_side``; refused before decoding when
    its network input would exceed ``limit`` pixels."""
    try:
        width, height = declared_size(path)
    except Image.DecompressionBombError:
        bomb = 2 * Image.MAX_IMAGE_PIXELS / 1e6
        raise ValueError(f"{path}: declares over {bomb:.0f} MP (limit {limit / 1e6:.1f} MP)") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot be read as an image ({exc})") from None
    scale = min(1.0, max_side / max(width, height)) if max_side else 1.0
    pixels = int(width * scale) * int(height * scale)
    if pixels > limit:
        raise ValueError(
            f"{path}: {width}x{height} is over the {limit / 1e6:.1f} MP limit for this task and memory "
            "(--tile, --max-side or --max-pixels)"
        )
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"{path}: cannot be read as an image")
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if scale < 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return image


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


def _write_table(path: Path, output_columns: list[str], rows: list[list]) -> None:
    """``frames.csv``: each processed input, its results, the blur estimate (empty without an estimator) and
    whether it was passed through as sharp."""
    header = ["input", *output_columns, "blur_x_px", "blur_y_px", "blur_px", "passed_sharp"]
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as table:
        writer = csv.writer(table)
        writer.writerow(header)
        writer.writerows(["" if v is None else v for v in row] for row in rows)


def enhance_command(opts: EnhanceOptions) -> int:
    """``srdb enhance``: every readable input is processed; an unreadable or oversized one is reported and
    skipped, and the exit code is 1 if any was."""
    jobs = plan(opts)
    weights = opts.model or str(bundled_model())
    backend = create_backend(opts.backend, ModelFiles(weights=weights), opts.device, "fp16")
    enhancer = Enhancer(backend, ProcessingOptions(tile_size=opts.tile, tile_overlap=TILE_OVERLAP))
    budget = budget_bytes(backend.memory_device, opts.memory_budget_mb)
    limit = opts.max_pixels or max(1, max_pixels_for(opts.task, backend.memory_device, budget, opts.tile))
    if opts.min_blur_px > 0 and not backend.estimates_blur:
        print(f"{weights}: the model has no blur estimator; --min-blur-px passes nothing through", file=sys.stderr)
    failed = 0
    rows = []
    for job in jobs:
        try:
            image = _read(job.source, opts.max_side, limit)
        except ValueError as exc:
            print(f"skipped: {exc}", file=sys.stderr)
            failed += 1
            continue
        result = enhancer.enhance_batch([Frame(image, opts.task, "bgr", min_blur_px=opts.min_blur_px)])[0]
        blur = [None] * 3 if result.blur is None else [round(v, 3) for v in result.blur]
        rows.append([job.source, *job.outputs.values(), *blur, int(result.passed_sharp)])
        for name, path in job.outputs.items():  # atomic_output makes the result's folder
            output = getattr(result, name)
            _write(path, output)
            if name in job.panels:
                _write(job.panels[name], side_by_side(image, output, ("input", name.replace("_", " "))))
        timings = ", ".join(f"{k} {v:.0f} ms" for k, v in result.timings_ms.items())
        blurred = "" if result.blur is None else f"; blur {result.blur[2]:.1f} px"
        passed = ", passed through as sharp" if result.passed_sharp else ""
        print(f"{job.source} -> {', '.join(map(str, job.outputs.values()))} ({timings}{blurred}{passed})")
    if rows:
        _write_table(Path(opts.out) / FRAMES_CSV, [*(f"{n}_file" for n in jobs[0].outputs)], rows)
    if failed:
        print(f"{failed} of {len(jobs)} inputs skipped", file=sys.stderr)
    return 1 if failed else 0
