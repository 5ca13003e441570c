"""``srdb demo``: the whole evaluation on the bundled samples — bag, node process, replay, report, summary."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..data.blur import CAMERA_NOISE, MotionBlurSynthesizer
from ..resources import bundled_model, share_dir
from .bags import make_bag
from .evaluate import EvalOptions, evaluate, print_summary

MARKER = ".srdb-demo"


@dataclass
class DemoOptions:
    out: str = "demo_out"
    frames: int = 0
    fps: float = 1.0
    seed: int = 0
    backend: str = "auto"


def demo_command(opts: DemoOptions) -> int:
    """``srdb demo``."""
    out = Path(opts.out)
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise FileExistsError(f"{out} exists and was not made by `srdb demo`; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by srdb demo\n")
    samples = share_dir() / "samples"
    t0 = time.monotonic()
    # camera blur with a camera's noise; about one EO frame in five nearly sharp (seed 0: the third, 0.2 px, and
    # the sixth, 1.4 px), which the model should leave as it is
    synth = MotionBlurSynthesizer(seed=opts.seed, sharp_prob=0.2, **CAMERA_NOISE)
    info = make_bag(
        samples / "eo", samples / "ir", out / "bag", fps=opts.fps, max_frames=opts.frames, synthesizer=synth
    )
    print(
        f"[1/3] bag {info['path']}: {info['frames']['eo']} EO frames (synthetic motion blur, some nearly sharp) + "
        f"{info['frames']['ir']} IR frames (x4 downscaled) at {opts.fps:g} fps, with ground truth"
    )
    ros_args = ["-p", f"backend:={opts.backend}", "-p", "log_every_n:=0"]
    print(f"[2/3] starting enhance_node (model {bundled_model().name}, backend {opts.backend}) and replaying ...")
    metrics = evaluate(EvalOptions(out / "bag", out / "report", ros_args=tuple(ros_args)))
    print(f"[3/3] report written in {time.monotonic() - t0:.0f} s")
    print_summary(metrics, out / "report")
    return 0
