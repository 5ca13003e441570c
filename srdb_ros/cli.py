"""``srdb``: the project's command line. Each sub-command's code lives in its own sub-package and is
imported only when that command runs, so ``srdb --help`` stays fast."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

TASK_CHOICES = ("deblur", "sr", "both")


def _info(sub) -> None:
    p = sub.add_parser("info", help="parameter counts and GFLOPs of a model configuration",
                       description="Print parameter counts (training and deploy form) and GFLOPs per task at the "
                                   "paper's resolutions (1240x984 deblur, 310x246 -> 1240x984 SR).")
    p.add_argument("--model", default="student", help="teacher, student or a .safetensors file (default: student)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(entry="srdb_ros.models.summary:main")


def _export(sub) -> None:
    p = sub.add_parser("export", help="export the deploy-form model to ONNX for one task",
                       description="Export to ONNX (opset 17, dynamic height/width, input 'image' 1x3xHxW with H, W "
                                   "multiples of 4), check it with onnx.checker and compare ONNX Runtime with "
                                   "PyTorch (fails above 1e-3 max abs difference).")
    p.add_argument("--model", default="student", help="teacher, student or a .safetensors file")
    p.add_argument("--task", choices=TASK_CHOICES, default="deblur")
    p.add_argument("--output", required=True, help="output .onnx path")
    p.add_argument("--fp16", action="store_true", help="export an fp16 graph (for strongly typed TensorRT engines)")
    p.set_defaults(entry="srdb_ros.export.onnx_export:main")


def _build_engine(sub) -> None:
    p = sub.add_parser("build-engine", help="build a TensorRT 10 engine from an exported ONNX",
                       description="Build a serialized TensorRT engine (FP16, optimisation profile, reused timing "
                                   "cache, workspace limit) and write <engine>.json describing what it was built for.")
    p.add_argument("--onnx", required=True, help="ONNX file from `srdb export`")
    p.add_argument("--output", required=True, help="engine file to write")
    p.add_argument("--min-shape", default="1x3x64x64", help="smallest input NxCxHxW (default 1x3x64x64)")
    p.add_argument("--opt-shape", default="1x3x984x1240", help="input shape to tune for (default 1x3x984x1240)")
    p.add_argument("--max-shape", default="2x3x1088x1920", help="largest input (default 2x3x1088x1920)")
    p.add_argument("--workspace-gib", type=float, default=4.0, help="builder workspace limit in GiB")
    p.add_argument("--timing-cache", default=None, help="timing cache file (default: next to the engine)")
    p.add_argument("--fp32", action="store_true", help="do not enable FP16 kernels")
    p.set_defaults(entry="srdb_ros.export.tensorrt_build:main")


def _node(sub) -> None:
    p = sub.add_parser("node", help="run the enhance node (no ros2 CLI needed)",
                       description="Run enhance_node in this process with the ROS environment set up. Extra "
                                   "arguments after `--` go to the node, e.g. "
                                   "`srdb node -- --ros-args -p eo.task:=both`.")
    p.add_argument("--params-file", default=None, help="ROS parameter file (default: the bundled config/enhance.yaml)")
    p.add_argument("--localhost", action=argparse.BooleanOptionalAction, default=True,
                   help="keep DDS discovery on this machine (default: on)")
    p.add_argument("ros_args", nargs=argparse.REMAINDER, help="arguments passed to the node")
    p.set_defaults(entry="srdb_ros.ros.launcher:main")


def _train(sub) -> None:
    p = sub.add_parser("train", help="run the multi-stage training pipeline",
                       description="Run the stages init, phase1, phase2, dann, distill, student_dann, export in "
                                   "order (or a subset). Multi-GPU: torchrun --nproc_per_node N -m srdb_ros.cli train ...")
    p.add_argument("--config", required=True, help="YAML config, e.g. config/train_paper.yaml or config/train_smoke.yaml")
    p.add_argument("--output", default=None, help="run folder (default runs/<name>)")
    p.add_argument("--stages", default=None, help="comma-separated subset of stages, e.g. phase2,dann")
    p.add_argument("--resume", action="store_true", help="continue a run from its last checkpoints")
    p.set_defaults(entry="srdb_ros.training.pipeline:main")


def _score(sub) -> None:
    p = sub.add_parser("score", help="PSNR/SSIM of a model vs the baseline on image pairs",
                       description="Deblur: --pairs DIR with blur/ and sharp/ folders, or a folder of sharp frames "
                                   "blurred with --blur-seed; baseline = the blurry input, RGB. SR: --hr DIR of "
                                   "high-resolution frames, LR by antialiased bicubic x4; baseline = bicubic "
                                   "upscale, Y channel with a 4-pixel border.")
    p.add_argument("--model", required=True, help="teacher, student or a .safetensors file")
    p.add_argument("--task", choices=("deblur", "sr"), required=True)
    p.add_argument("--pairs", default=None, help="deblur: folder with blur/ and sharp/, or a sharp folder")
    p.add_argument("--hr", default=None, help="folder of sharp high-resolution frames")
    p.add_argument("--blur-seed", type=int, default=1234, help="seed of the synthetic blur (default 1234)")
    p.add_argument("--blur-lr", action="store_true", help="sr: motion-blur HR frames before downscaling (Fig. 9)")
    p.add_argument("--max-images", type=int, default=0, help="use at most this many images (0 = all)")
    p.add_argument("--crop", type=int, default=0, help="centre-crop frames to at most this size (0 = whole)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(entry="srdb_ros.evaluation.scoring:main")


def _bench(sub) -> None:
    p = sub.add_parser("bench", help="latency/FPS per backend and task, with the ratio to the reference code",
                       description="Time each backend per task at the paper's resolutions (1240x984 deblur, "
                                   "310x246 -> x4 SR) and at --size: model-only and end-to-end (with pre/post-"
                                   "processing), median and p95. The official MIMO-UNet/SPAN forward (eager fp32) "
                                   "runs in the same process; ratio = its median / ours.")
    p.add_argument("--model", default="student", help="teacher, student or a .safetensors file")
    p.add_argument("--task", choices=(*TASK_CHOICES, "all"), default="all")
    p.add_argument("--backend", choices=("torch", "onnxruntime", "tensorrt", "all"), default="all")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--precision", choices=("fp32", "fp16", "bf16"), default="fp16", help="CUDA precision (torch)")
    p.add_argument("--size", default=None, help="extra input size WxH, e.g. 640x512")
    p.add_argument("--repeats", type=int, default=0, help="timed runs per case (default 3 on CPU, 50 on CUDA)")
    p.add_argument("--warmup", type=int, default=None, help="untimed runs first (default 1 on CPU, 10 on CUDA)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's default)")
    p.add_argument("--json", action="store_true", help="print the records as JSON")
    p.set_defaults(entry="srdb_ros.inference.bench:main")


COMMANDS = (_info, _export, _build_engine, _node, _train, _score, _bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="srdb",
        description="srdb_ros: integrated motion deblurring and x4 super-resolution for EO/IR cameras. "
                    "Run `srdb COMMAND --help` for each command.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    module, _, func = args.entry.partition(":")
    try:
        return int(getattr(importlib.import_module(module), func)(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"srdb {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
