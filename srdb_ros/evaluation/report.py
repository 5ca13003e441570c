"""The evaluation report: report.md, side-by-side PNG grids and latency plots."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..core.imaging import to_unit_rgb
from .bags import BagContents

GRID_HEIGHT = 256


def _to_display(arr: np.ndarray, order: str, reference: np.ndarray | None = None) -> np.ndarray:
    """Any decoded frame -> 8-bit BGR for display (16-bit through the reference's percentiles)."""
    unit = to_unit_rgb(arr, order, reference)
    img = np.rint(unit * 255).astype(np.uint8)
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else img[:, :, ::-1].copy()


LABEL_HEIGHT = 24


def _labelled(img: np.ndarray, text: str, height: int) -> np.ndarray:
    """The panel scaled to ``height`` under a white strip with its label, shrunk to fit the panel's width."""
    scale = height / img.shape[0]
    panel = cv2.resize(img, (max(1, round(img.shape[1] * scale)), height), interpolation=cv2.INTER_NEAREST)
    width = max(panel.shape[1], 8)
    strip = np.full((LABEL_HEIGHT, width, 3), 255, np.uint8)
    font, size = cv2.FONT_HERSHEY_SIMPLEX, 0.5
    text_width = cv2.getTextSize(text, font, size, 1)[0][0]
    if text_width > width - 8:
        size *= (width - 8) / text_width
    cv2.putText(strip, text, (4, LABEL_HEIGHT - 8), font, max(size, 0.2), (0, 0, 0), 1, cv2.LINE_AA)
    if panel.shape[1] < width:
        panel = np.pad(panel, ((0, 0), (0, width - panel.shape[1]), (0, 0)), constant_values=255)
    return np.vstack([strip, panel])


def _crop(img: np.ndarray) -> np.ndarray:
    """The centre quarter (by side) of the frame."""
    h, w = img.shape[:2]
    return img[h * 3 // 8 : h * 5 // 8, w * 3 // 8 : w * 5 // 8]


def make_grid(inp: np.ndarray, out: np.ndarray, gt: np.ndarray | None, titles: tuple[str, str, str]) -> np.ndarray:
    """Row 1: input | output | ground truth (input shown at the output's size); row 2: centre crops, magnified."""
    size = (out.shape[1], out.shape[0])
    inp = cv2.resize(inp, size, interpolation=cv2.INTER_NEAREST) if inp.shape[:2] != out.shape[:2] else inp
    panels = [inp, out] + ([gt] if gt is not None else [])
    names = list(titles[: len(panels)])
    top = np.hstack([_labelled(p, n, GRID_HEIGHT) for p, n in zip(panels, names)])
    bottom = np.hstack([_labelled(_crop(p), n + " (crop)", GRID_HEIGHT) for p, n in zip(panels, names)])
    width = max(top.shape[1], bottom.shape[1])
    pad = lambda a: np.pad(a, ((0, 0), (0, width - a.shape[1]), (0, 0)))  # noqa: E731
    return np.vstack([pad(top), pad(bottom)])


def write_grids(out_dir: Path, bag: BagContents, outputs: dict, rows: list[dict], per_group: int = 3) -> list[Path]:
    """Side-by-side PNGs of a few frames per camera and task (outputs decoded by the scorer, keyed by
    (camera, task, stamp))."""
    frames = bag.frames
    paths = []
    for cam, task in sorted({(r["camera"], r["task"]) for r in rows}):
        stamps = sorted({r["stamp_ns"] for r in rows if r["camera"] == cam and r["task"] == task})
        for stamp in stamps[:: max(1, len(stamps) // per_group)][:per_group]:
            out = outputs.get((cam, task, stamp))
            inp = frames.get(("input", cam, stamp))
            gt = frames.get(("gt", cam, stamp))
            if out is None or inp is None:
                continue
            ref = gt[0] if gt is not None and gt[0].shape == out[0].shape else None
            grid = make_grid(
                _to_display(*inp, ref if ref is not None and ref.dtype == inp[0].dtype else None),
                _to_display(*out, ref),
                _to_display(*gt, ref) if ref is not None else None,
                (
                    "input (blurred)" if task == "deblur" else "input (low-res, nearest x4)",
                    "deblurred" if task == "deblur" else "super-resolved x4",
                    "ground truth",
                ),
            )
            path = out_dir / f"grid_{cam}_{task}_{stamp}.png"
            cv2.imwrite(str(path), grid)
            paths.append(path)
    return paths


def write_latency_plot(out_dir: Path, rows: list[dict]) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({(r["camera"], r["task"]) for r in rows if r["latency_ms"] is not None})
    if not groups:
        return None
    fig, (hist, timeline) = plt.subplots(1, 2, figsize=(11, 4))
    t0 = min(r["receive_wall_ns"] for r in rows)
    for cam, task in groups:
        group = [r for r in rows if r["camera"] == cam and r["task"] == task and r["latency_ms"] is not None]
        lat = [r["latency_ms"] for r in group]
        hist.hist(lat, bins=min(30, max(5, len(lat))), alpha=0.6, label=f"{cam}/{task}")
        timeline.plot([(r["receive_wall_ns"] - t0) / 1e9 for r in group], lat, "o-", ms=3, label=f"{cam}/{task}")
    hist.set_xlabel("end-to-end latency (ms)")
    hist.set_ylabel("frames")
    hist.legend()
    timeline.set_xlabel("receive time since first output (s)")
    timeline.set_ylabel("latency (ms)")
    timeline.legend()
    fig.suptitle("Input published -> output received")
    return _save_figure(fig, out_dir / "latency.png")


def write_blur_plot(out_dir: Path, rows: list[dict]) -> Path | None:
    """Each deblurred frame's PSNR gain against the node's blur estimate (frames with both)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [r for r in rows if r["task"] == "deblur" and r.get("blur_px") is not None and "psnr" in r]
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for cam in sorted({r["camera"] for r in points}):
        group = [r for r in points if r["camera"] == cam]
        ax.plot([r["blur_px"] for r in group], [r["psnr"] - r["baseline_psnr"] for r in group], "o", ms=4, label=cam)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xlabel("estimated blur (px, <camera>/blur)")
    ax.set_ylabel("deblur gain (dB)")
    ax.legend()
    return _save_figure(fig, out_dir / "blur_gain.png")


def _save_figure(fig, path: Path) -> Path:
    """Lay out, write and close a report figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(out_dir: Path, bag: BagContents, metrics: dict, rows: list[dict], outputs: dict) -> Path:
    grids = write_grids(out_dir, bag, outputs, rows)
    plot = write_latency_plot(out_dir, rows)
    blur_plot = write_blur_plot(out_dir, rows)
    lines = [
        "# srdb_ros evaluation report",
        "",
        f"Bag: `{bag.path}` replayed at rate {metrics['rate']} x{metrics['loops']} "
        f"({'attached to a running node' if metrics['run'].get('attached') else 'node started as its own process'}). "
        f"Outputs recorded in `recorded/` (MCAP).",
        "",
        "Conventions: deblur PSNR/SSIM on RGB vs the sharp frame, baseline = the blurry input; x4 SR on the Y channel "
        "(BT.601) with a 4-pixel border crop vs the high-resolution frame, baseline = bicubic x4 of the input; 16-bit "
        "frames mapped through the ground truth's 1st-99th percentiles. Latency = output received - input published.",
        "",
        "| camera/task | frames out/in | unanswered | throughput (FPS) | latency p50 / p95 / max (ms) | PSNR (dB) | "
        "baseline PSNR | gain | SSIM | baseline SSIM |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, e in metrics["results"].items():
        if key == "node_diagnostics":
            continue
        lat, q = e["latency_ms"], e.get("quality")
        qual = (
            (
                f"{q['psnr_db']:.2f} | {q['baseline_psnr_db']:.2f} | {q['psnr_gain_db']:+.2f} | {q['ssim']:.3f} | "
                f"{q['baseline_ssim']:.3f}"
            )
            if q
            else "- | - | - | - | -"
        )
        lines.append(
            f"| {key} | {e['frames_out']}/{e['frames_in']} | {e['frames_unanswered']} | {e['throughput_fps']} | "
            f"{lat['p50']} / {lat['p95']} / {lat['max']} | {qual} |"
        )
    diag = metrics["results"].get("node_diagnostics")
    if diag:
        lines += ["", "## The node's own diagnostics (last /diagnostics message)", ""]
        for name, values in diag.items():
            keep = {
                k: v
                for k, v in values.items()
                if k
                in (
                    "backend",
                    "task",
                    "frames received",
                    "frames published",
                    "frames dropped",
                    "frames failed",
                    "frames passed sharp",
                    "blur p50 (px)",
                    "blur p95 (px)",
                    "infer p50 (ms)",
                    "total p50 (ms)",
                    "total p95 (ms)",
                )
            }
            lines.append(f"- **{name}**: " + ", ".join(f"{k} {v}" for k, v in keep.items()))
    if plot:
        lines += ["", "## Latency", "", f"![latency]({plot.name})"]
    if blur_plot:
        lines += [
            "",
            "## Blur and gain",
            "",
            "Each deblurred frame's gain against the node's own blur estimate (frames below the camera's "
            "min_blur_px went out unchanged: 0 dB).",
            "",
            f"![blur and gain]({blur_plot.name})",
        ]
    if grids:
        lines += ["", "## Frames (input | output | ground truth; second row: centre crops)", ""]
        lines += [f"![{g.stem}]({g.name})" for g in grids]
    lines += ["", "Every figure is in `metrics.json`; one row per output frame in `frames.csv`.", ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    return path
