"""``srdb``: the project's command line. It parses, fills the command's typed options dataclass and calls
the library function (``score_command(ScoreOptions)``, ...); each handler imports its code only when that
command runs, so ``srdb --help`` stays fast."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

TASK_CHOICES = ("deblur", "sr", "both")


def _device(text: str) -> str:
    """argparse type of --device: auto, cpu, cuda or cuda:N."""
    from .inference.backends import is_device

    if not is_device(text):
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {text!r}")
    return text


def _options(cls, args):
    """An options dataclass filled from the parsed arguments of the same names."""
    import dataclasses

    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)})


def _frame_sizes(text: str) -> list[tuple[int, int]]:
    """argparse type of ``--sizes``: comma-separated WxH."""
    from .core.contract import parse_size

    try:
        return [parse_size(part) for part in text.split(",")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# -- handlers: each imports its command's code only when that command runs ------------------------------------------
def _run_enhance(args) -> int:
    from .inference.files import EnhanceOptions, enhance_command

    return enhance_command(_options(EnhanceOptions, args))


def _run_info(args) -> int:
    from .models.summary import InfoOptions, info_command

    return info_command(_options(InfoOptions, args))


def _run_export(args) -> int:
    from .export.onnx_export import ExportOptions, export_command

    return export_command(_options(ExportOptions, args))


def _run_build_engine(args) -> int:
    from .export.tensorrt_build import BuildEngineOptions, build_engine_command

    return build_engine_command(_options(BuildEngineOptions, args))


def _run_node(args) -> int:
    from .ros.launcher import run_node

    return run_node(args.params_file, args.ros_args, args.localhost)


def _run_data_check(args) -> int:
    from .data.layout import data_check_command

    return data_check_command(args.root)


def _run_score(args) -> int:
    from .quality.scoring import ScoreOptions, score_command

    opts = _options(ScoreOptions, args)
    if opts.suite:
        from .quality.suite import suite_command

        return suite_command(opts)
    return score_command(opts)


def _run_fig9(args) -> int:
    from .quality.scoring import Fig9Options, fig9_command

    return fig9_command(_options(Fig9Options, args))


def _run_bench(args) -> int:
    from .benchmark.bench import BenchOptions, bench_command

    message_path = None
    if args.mode == "ros":
        try:
            from .ros.message_path import message_path
        except ImportError as exc:
            raise RuntimeError(f"--mode ros needs the ROS 2 Python runtime (rclpy, sensor_msgs): {exc}") from exc
    return bench_command(_options(BenchOptions, args), message_path)


def _run_make_bag(args) -> int:
    from .evaluation.bags import MakeBagOptions, make_bag_command

    return make_bag_command(_options(MakeBagOptions, args))


def _run_evaluate(args) -> int:
    from pathlib import Path

    from .evaluation.evaluate import EvalOptions, evaluate_command

    opts = EvalOptions(
        Path(args.bag),
        Path(args.out),
        attach=args.attach,
        namespace=args.namespace,
        rate=args.rate,
        loops=args.loop,
        params_file=args.params_file,
        ros_args=tuple(args.ros_args),
        domain_id=args.domain_id,
        realtime=args.realtime,
        frame_timeout=args.frame_timeout,
    )
    return evaluate_command(opts)


def _run_demo(args) -> int:
    from .evaluation.demo import DemoOptions, demo_command

    return demo_command(_options(DemoOptions, args))


def _run_compile(args) -> int:
    from .export.compiled import CompileOptions, compile_command
    from .resources import bundled_model

    args.model = args.model or str(bundled_model())
    return compile_command(_options(CompileOptions, args))


def _run_soak(args) -> int:
    from .evaluation.soak import SoakOptions, soak_command

    return soak_command(_options(SoakOptions, args))


def _run_blur_preview(args) -> int:
    from .data.preview import BlurPreviewOptions, blur_preview_command
    from .training.config import load_config

    data = load_config(args.config).data
    return blur_preview_command(_options(BlurPreviewOptions, args), data.blur, data.ir_blur)


def _model_options(p) -> None:
    """--model / --random-init, shared by the commands that run a model."""
    p.add_argument(
        "--model",
        default=None,
        help="a .safetensors file (default: the bundled trained student, models/srdb_student.safetensors)",
    )
    p.add_argument(
        "--random-init",
        action="store_true",
        help="use an untrained network on purpose; --model then names its architecture (teacher or student)",
    )


def _info(sub) -> None:
    p = sub.add_parser(
        "info",
        help="parameter counts and GFLOPs of a model configuration",
        description="Print parameter counts (training and deploy form) and GFLOPs per task at the "
        "paper's resolutions (1240x984 deblur, 310x246 -> 1240x984 SR).",
    )
    p.add_argument(
        "--model", default="student", help="teacher, student (architecture only) or a .safetensors (default: student)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_run_info)


def _export(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export the deploy-form model to ONNX for one task",
        description="Export to ONNX (opset 17, dynamic height/width, input 'image' 1x3xHxW with H, W "
        "multiples of 4), check it with onnx.checker and compare ONNX Runtime with "
        "PyTorch (fails above 1e-3 max abs difference).",
    )
    _model_options(p)
    p.add_argument("--task", choices=TASK_CHOICES, default="deblur")
    p.add_argument("--output", required=True, help="output .onnx path")
    p.add_argument("--fp16", action="store_true", help="export an fp16 graph (for strongly typed TensorRT engines)")
    p.set_defaults(handler=_run_export)


def _build_engine(sub) -> None:
    p = sub.add_parser(
        "build-engine",
        help="build a TensorRT 10 engine from an exported ONNX",
        description="Build a serialized TensorRT engine (FP16, optimisation profile, reused timing "
        "cache, workspace limit) and write <engine>.json describing what it was built for.",
    )
    p.add_argument("--onnx", required=True, help="ONNX file from `srdb export`")
    p.add_argument("--output", required=True, help="engine file to write")
    p.add_argument("--min-shape", default="1x3x64x64", help="smallest input NxCxHxW (default 1x3x64x64)")
    p.add_argument("--opt-shape", default="1x3x984x1240", help="input shape to tune for (default 1x3x984x1240)")
    p.add_argument("--max-shape", default="2x3x1088x1920", help="largest input (default 2x3x1088x1920)")
    p.add_argument("--workspace-gib", type=float, default=4.0, help="builder workspace limit in GiB")
    p.add_argument("--timing-cache", default=None, help="timing cache file (default: next to the engine)")
    p.add_argument("--fp32", action="store_true", help="do not enable FP16 kernels")
    p.set_defaults(handler=_run_build_engine)


class _NodeHelp(argparse.Action):
    """``srdb node --help``: the command's options, then the node's topics and parameters (imported only now)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None) -> None:
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from .ros.params import usage

        parser.print_help()
        print("\nThe node (arguments after `--`):\n")
        print(usage("srdb node --"))
        parser.exit()


def _node(sub) -> None:
    p = sub.add_parser(
        "node",
        add_help=False,
        help="run the enhance node (no ros2 CLI needed)",
        description="Run enhance_node in this process with the ROS environment set up. Extra "
        "arguments after `--` go to the node, e.g. "
        "`srdb node -- --ros-args -p eo.task:=both`.",
    )
    p.add_argument("-h", "--help", action=_NodeHelp, help="show this help, the node's topics and parameters")
    p.add_argument(
        "--params-file",
        default=None,
        help="ROS parameter file (default: none, the node's defaults, which config/enhance.yaml repeats)",
    )
    p.add_argument(
        "--localhost",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep DDS discovery on this machine (default: on)",
    )
    p.set_defaults(handler=_run_node)


def _run_train(args) -> int:
    import os

    from .training.run import TrainOptions, print_table, run

    stages = args.stages.split(",") if args.stages else None
    summary = run(
        TrainOptions(
            args.config,
            args.output,
            stages,
            args.resume,
            args.time_budget,
            args.teacher_init,
            args.student_init,
            args.data_root,
        )
    )
    if int(os.environ.get("RANK", "0")) == 0:
        print_table(summary)
    return 0


def _train(sub) -> None:
    p = sub.add_parser(
        "train",
        help="run the multi-stage training pipeline",
        description="Run the stages init, phase1, phase2, dann, distill, student_dann, export in "
        "order (or a subset). span_baseline (a standalone SPAN on the same data, for Fig. 9) runs only "
        "when named in --stages. Multi-GPU: torchrun --nproc_per_node N -m srdb_ros.cli train ...",
    )
    p.add_argument(
        "--config", required=True, help="YAML config, e.g. config/train_paper.yaml or config/train_smoke.yaml"
    )
    p.add_argument("--output", default=None, help="run folder (default runs/<name>)")
    p.add_argument("--stages", default=None, help="comma-separated subset of stages, e.g. phase2,dann")
    p.add_argument("--resume", action="store_true", help="continue a run from its last checkpoints")
    p.add_argument(
        "--time-budget",
        type=float,
        default=None,
        metavar="MINUTES",
        help="finish the whole run (validated, exported student included) within this many minutes; "
        "training stages split the time by their `share` values and stop cleanly with a checkpoint",
    )
    p.add_argument(
        "--teacher-init", default=None, help="start the teacher (and distillation's teacher) from this .safetensors"
    )
    p.add_argument("--student-init", default=None, help="start the student of the distill stage from this .safetensors")
    p.add_argument(
        "--data-root",
        default=None,
        help="folder the config's .txt splits are relative to (overrides data.root; e.g. a copy of shared/data)",
    )
    p.set_defaults(handler=_run_train)


def _score(sub) -> None:
    p = sub.add_parser(
        "score",
        help="PSNR/SSIM of a model vs the baseline on image pairs",
        description="Deblur: --pairs DIR with blur/ and sharp/ folders, or a folder of sharp frames "
        "blurred with --blur-seed; baseline = the blurry input, RGB. SR: --hr DIR of "
        "high-resolution frames, LR by antialiased bicubic x4; baseline = bicubic "
        "upscale, Y channel with a 4-pixel border. --suite deblur: the deblurring robustness suite (test blur "
        "in linear light and display gamma, an independent shake generator, the real Levin et al. kernels, "
        "nearly sharp and sharp frames, real GOPRO pairs, thermal smear/shake/nearly sharp), one row per "
        "formation choice, on the test frames under --data-root; --max-images frames per row (default 12) "
        "and --crop (default 256) size it.",
    )
    _model_options(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--task", choices=("deblur", "sr"))
    what.add_argument("--suite", choices=("deblur",), help="run a robustness suite instead of one set of pairs")
    p.add_argument(
        "--data-root",
        default="../shared/data",
        help="--suite: folder holding eo/bsd68, eo/sun_hays80, ir/hituav_val, kernels/, deblur_real/ "
        "(default ../shared/data)",
    )
    p.add_argument("--pairs", default=None, help="deblur: folder with blur/ and sharp/, or a sharp folder")
    p.add_argument("--hr", default=None, help="folder of sharp high-resolution frames")
    p.add_argument("--blur-lr", action="store_true", help="sr: motion-blur HR frames before downscaling (Fig. 9)")
    _image_selection(p)
    p.set_defaults(handler=_run_score)


def _image_selection(p) -> None:
    """Options shared by the scoring commands."""
    p.add_argument("--blur-seed", type=int, default=1234, help="seed of the synthetic blur (default 1234)")
    p.add_argument(
        "--blur-length",
        type=float,
        nargs=2,
        default=(15.0, 45.0),
        metavar=("MIN", "MAX"),
        help="synthetic blur path length range in pixels (default 15 45: realistic camera shake)",
    )
    p.add_argument(
        "--blur-model",
        choices=("camera", "thermal"),
        default="camera",
        help="camera: EO shake/platform motion in linear light + sensor noise; thermal: microbolometer smear",
    )
    p.add_argument("--max-images", type=int, default=0, help="use at most this many images (0 = all)")
    p.add_argument("--crop", type=int, default=0, help="centre-crop frames to at most this size (0 = whole)")
    p.add_argument("--json", action="store_true", help="print JSON")


def _fig9(sub) -> None:
    p = sub.add_parser(
        "fig9",
        help="SR of blurry LR frames: integrated model vs standalone SPAN vs bicubic",
        description="Blur sharp HR frames (seeded), downscale x4, super-resolve with the integrated "
        "model and with a standalone SPAN (from `srdb train --stages span_baseline`), "
        "score against the sharp HR frame (Y channel, 4-pixel border).",
    )
    _model_options(p)
    p.add_argument("--span", required=True, help="standalone SPAN (.safetensors from the span_baseline stage)")
    p.add_argument("--hr", required=True, help="folder (or .txt list) of sharp HR frames")
    _image_selection(p)
    p.set_defaults(handler=_run_fig9)


def _bench(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="latency/FPS per backend and task, with the ratio to the reference code",
        description="Time each backend per task at the paper's resolutions (1240x984 deblur, "
        "310x246 -> x4 SR), or at exactly the --sizes given: model-only and end-to-end (with pre/post-"
        "processing), median and p95. The official MIMO-UNet/SPAN forward (eager fp32) "
        "runs in the same process; ratio = its median / ours.",
    )
    _model_options(p)
    p.add_argument("--task", choices=(*TASK_CHOICES, "all"), default="all")
    p.add_argument("--backend", choices=("torch", "onnxruntime", "tensorrt", "all"), default="all")
    p.add_argument("--device", type=_device, default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=("fp32", "fp16", "bf16"), default="fp16", help="CUDA precision (torch)")
    p.add_argument(
        "--sizes",
        type=_frame_sizes,
        default=None,
        metavar="WxH[,WxH...]",
        help="measure exactly these input sizes, e.g. 640x512,320x256 (default: the paper's size per task)",
    )
    p.add_argument("--repeats", type=int, default=0, help="timed runs per case (default 3 on CPU, 50 on CUDA)")
    p.add_argument("--warmup", type=int, default=None, help="untimed runs first (default 1 on CPU, 10 on CUDA)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's default)")
    p.add_argument(
        "--no-quality", dest="quality", action="store_false", help="skip the output-quality check against the fp32 path"
    )
    p.add_argument("--json", action="store_true", help="print the records as JSON")
    p.add_argument(
        "--mode",
        choices=("default", "ros"),
        default="default",
        help="ros: also time the node's message path (sensor_msgs/Image in, conversion, enhance, Image out; no DDS)",
    )
    p.set_defaults(handler=_run_bench)


def _make_bag(sub) -> None:
    p = sub.add_parser(
        "make-bag",
        help="build an evaluation rosbag2 from image folders",
        description="EO frames are degraded by seeded synthetic motion blur, IR frames downscaled x4 "
        "(antialiased bicubic); each input has its ground truth on /<cam>/ground_truth "
        "with the same stamp. 8-bit and 16-bit thermal frames are kept as mono8/mono16.",
    )
    p.add_argument("--eo", default=None, help="folder of sharp EO frames")
    p.add_argument("--ir", default=None, help="folder of high-resolution thermal frames")
    p.add_argument(
        "--camera",
        action="append",
        default=[],
        metavar="NAME[:eo|ir]=FOLDER",
        help="another camera from its own folder, repeatable: front=/data/front, thermal:ir=/data/flir "
        "(eo: motion-blurred, ir: x4 downscaled; srdb evaluate gives the node these cameras and domains)",
    )
    p.add_argument("--output", required=True, help="bag folder to create")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    p.add_argument("--fps", type=float, default=10.0, help="frame rate of the bag (default 10)")
    p.add_argument("--seed", type=int, default=0, help="motion-blur seed")
    p.add_argument("--max-frames", type=int, default=0, help="frames per camera (0 = all)")
    p.add_argument("--eo-max-side", type=int, default=0, help="downscale EO frames to this longer side (0 = keep)")
    p.add_argument(
        "--ir-max-side", type=int, default=0, help="downscale IR ground truth to this longer side (0 = keep)"
    )
    p.add_argument("--eo-encoding", choices=("bgr8", "rgb8"), default="bgr8")
    p.add_argument(
        "--transport",
        choices=("raw", "compressed"),
        default="raw",
        help="raw: sensor_msgs/Image on <cam>/image_raw; compressed: lossless PNG CompressedImage on "
        "<cam>/image_raw/compressed (srdb evaluate sets the node's <cam>.transport to match)",
    )
    p.set_defaults(handler=_run_make_bag)


def _evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="replay a bag through the node and report quality, latency and drops",
        description="Start enhance_node as its own process (or --attach to a running one), replay the "
        "bag's <cam>/image_raw and camera_info topics with their recorded QoS (lockstep: every frame waits "
        "for the answer to the previous one; --realtime: the bag's timing), "
        "record the outputs into OUT/recorded, and write OUT/report.md, metrics.json, "
        "frames.csv, image grids and latency plots. Arguments after -- go to the node.",
    )
    p.add_argument("bag", help="rosbag2 folder (MCAP or sqlite3)")
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--attach", action="store_true", help="use an enhance node that is already running")
    p.add_argument("--namespace", default="", help="namespace of the node's topics")
    p.add_argument(
        "--realtime",
        action="store_true",
        help="replay at the bag's timing (x --rate) as a live camera would; frames the node has no time for are "
        "dropped and reported (default: lockstep, each frame sent when the node answered the previous one)",
    )
    p.add_argument("--rate", type=float, default=1.0, help="--realtime: rate factor (as ros2 bag play --rate)")
    p.add_argument(
        "--frame-timeout", type=float, default=30.0, help="lockstep: longest wait in s for the answer to one frame"
    )
    p.add_argument("--loop", type=int, default=1, help="play the bag this many times")
    p.add_argument("--params-file", default=None, help="node parameter file (default: none, the node's defaults)")
    p.add_argument(
        "--domain-id",
        type=int,
        default=None,
        help="ROS_DOMAIN_ID (default: a private one, or the environment's with --attach)",
    )
    p.set_defaults(handler=_run_evaluate)


def _demo(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="the README demo: bag of bundled samples -> node -> report",
        description="Make a bag from the bundled sample frames, start the node with the bundled "
        "student model as its own process, replay, score and write a report; prints a "
        "summary. A few minutes on 2 CPU cores.",
    )
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out/)")
    p.add_argument("--frames", type=int, default=0, help="frames per camera (default: all bundled samples)")
    p.add_argument("--fps", type=float, default=1.0, help="replay frame rate (default 1)")
    p.add_argument("--seed", type=int, default=0, help="motion-blur seed")
    p.add_argument("--backend", default="auto", choices=("auto", "onnxruntime", "torch"))
    p.set_defaults(handler=_run_demo)


def _data(sub) -> None:
    p = sub.add_parser(
        "data",
        help="check a data root against the training splits and test sets",
        description="Data sets for training and testing (docs/data.md says where to get each and how to lay them out).",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="verify a data root's layout and say what is missing",
        description="Count, for every split in config/splits and every test set, the files found under ROOT; "
        "print what is missing and exit 1 if anything is.",
    )
    check.add_argument("root", metavar="ROOT", help="the data root (what data.root / --data-root point at)")
    check.set_defaults(handler=_run_data_check)


def _blur_preview(sub) -> None:
    p = sub.add_parser(
        "blur-preview",
        help="picture of every training blur family: kernels and blurred crops (EO and thermal)",
        description="Draw a kernel of each blur family of a training config (EO motions, partial exposure, "
        "formations, highlights, sharp pairs; thermal smear, shutter shake, sharp pairs) and apply it to an EO "
        "and an IR frame (default: bundled samples); writes one PNG.",
    )
    p.add_argument(
        "--config",
        default="config/train_cpu_robust.yaml",
        help="training config whose data.blur / data.ir_blur to draw (default config/train_cpu_robust.yaml)",
    )
    p.add_argument("--out", default="docs/blur_samples.png", help="PNG to write (default docs/blur_samples.png)")
    p.add_argument("--eo", default=None, help="EO frame (default: bundled astronaut.png)")
    p.add_argument("--ir", default=None, help="IR frame (default: a bundled HIT-UAV frame)")
    p.add_argument("--seed", type=int, default=0, help="blur seed")
    p.set_defaults(handler=_run_blur_preview)


def _enhance(sub) -> None:
    p = sub.add_parser(
        "enhance",
        help="run the model on image files and write the results (optionally side by side)",
        description="Deblur and/or x4 super-resolve image files or folders (8/16-bit, grey or colour, any size) "
        "with the bundled student or --model, and write <name>_deblurred.png / <name>_super_resolved.png "
        "into --out, keeping the inputs' folder layout (with --side-by-side, also the input next to each result). "
        "The output folder must be separate from the inputs; existing results are kept unless --overwrite. "
        "Frames over the memory limit (the node's rule: what the task fits in half the free memory) or that "
        "cannot be read are reported and skipped; the exit code is then 1.",
    )
    p.add_argument("inputs", nargs="+", help="image files or folders")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--task", choices=TASK_CHOICES, default="deblur")
    p.add_argument("--model", default=None, help="a .safetensors file (default: the bundled trained student)")
    p.add_argument("--backend", choices=("auto", "onnxruntime", "torch", "tensorrt"), default="auto")
    p.add_argument("--device", type=_device, default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--side-by-side", action="store_true", help="also write input | output panels")
    p.add_argument("--max-side", type=int, default=0, help="downscale inputs to this longer side first (0 = keep)")
    p.add_argument(
        "--max-pixels", type=int, default=0, help="skip larger inputs (0 = what the task fits in the memory budget)"
    )
    p.add_argument(
        "--memory-budget-mb", type=float, default=0.0, help="memory one frame may take (0 = half of what is free)"
    )
    p.add_argument("--tile", type=int, default=0, help="run larger inputs in overlapping tiles of this side (0 = off)")
    p.add_argument("--overwrite", action="store_true", help="replace results that already exist in --out")
    p.add_argument(
        "--min-blur-px",
        type=float,
        default=0.0,
        help="write frames whose estimated blur is shorter (pixels) unchanged as their deblurred result, as the "
        "node's <camera>.min_blur_px does (0 = deblur every frame); every frame's estimate goes to --out/frames.csv",
    )
    p.set_defaults(handler=_run_enhance)


def _compile(sub) -> None:
    p = sub.add_parser(
        "compile",
        help="AOT-compile the model for one task and input size (a warm start for the torch backend)",
        description="Compile the model ahead of time with PyTorch AOTInductor for one task and input size on "
        "this machine's CPU or GPU, and write the package beside the weights (or --output) with a .json "
        "description (device, torch version, precision, checksums). Compiling takes minutes; the node loads the "
        "package (parameter compiled_path) in under a second at every start and uses it for frames of that size. "
        "A package is native code: use only packages you made or trust.",
    )
    p.add_argument("--size", required=True, help="network input WxH, multiples of 4 (the padded frame size)")
    p.add_argument("--model", default=None, help="a .safetensors file (default: the bundled trained student)")
    p.add_argument("--task", choices=TASK_CHOICES, default="deblur")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--precision", choices=("fp32", "fp16", "bf16"), default="fp16", help="CUDA precision")
    p.add_argument("--output", default=None, help="package path (default: beside the weights)")
    p.set_defaults(handler=_run_compile)


def _soak(sub) -> None:
    p = sub.add_parser(
        "soak",
        help="overload the node for minutes and print memory, drops and latency over time",
        description="Start enhance_node as its own process, measure how many EO+IR frame pairs per second it "
        "answers (lockstep, timed from its first answer), then publish at --overload times that rate for "
        "--minutes, printing every --report-every seconds the node's RSS, frames sent / answered / dropped / "
        "failed and end-to-end latency percentiles. EO frames are deblurred at --width x --height, IR frames "
        "super-resolved x4 from a quarter of that. Arguments after -- go to the node.",
    )
    p.add_argument("--minutes", type=float, default=10.0, help="length of the overload phase (default 10)")
    p.add_argument("--overload", type=float, default=2.0, help="publish rate / measured capacity (default 2)")
    p.add_argument("--width", type=int, default=640, help="EO frame width (default 640)")
    p.add_argument("--height", type=int, default=480, help="EO frame height (default 480)")
    p.add_argument("--report-every", type=float, default=30.0, help="seconds between rows (default 30)")
    p.add_argument("--out", default="", help="also write every row to this JSON file")
    p.set_defaults(handler=_run_soak)


COMMANDS = (
    _info,
    _export,
    _build_engine,
    _node,
    _train,
    _score,
    _fig9,
    _bench,
    _make_bag,
    _evaluate,
    _demo,
    _blur_preview,
    _data,
    _enhance,
    _soak,
    _compile,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="srdb",
        description="srdb_ros: integrated motion deblurring and x4 super-resolution for EO/IR cameras. "
        "Run `srdb COMMAND --help` for each command.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, and tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM raised where the program is, so that cleanup (``finally``, context managers: child processes
    stopped, temporary files removed) runs as it does for Ctrl-C."""


def _interrupted(command: str, signum: int) -> int:
    print(f"srdb {command}: interrupted ({signal.Signals(signum).name}); nothing more was done", file=sys.stderr)
    return 128 + signum


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:  # everything after `--` goes to the ROS node (srdb node / evaluate)
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    args = build_parser().parse_args(argv)
    args.ros_args = extra
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    received: list[int] = []

    def raise_interrupt(signum: int, _frame) -> None:
        received.append(signum)
        raise Terminated(signum) if signum == signal.SIGTERM else KeyboardInterrupt

    handled = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not where Ctrl-C is ignored (background jobs)
        handled.append(signal.SIGINT)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {signum: signal.signal(signum, raise_interrupt) for signum in handled} if in_main_thread else {}
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt as exc:
        return _interrupted(args.command, exc.args[0] if isinstance(exc, Terminated) else signal.SIGINT)
    except BrokenPipeError:  # output piped into `head` and the like
        return 0
    except Exception as exc:  # noqa: BLE001 - one line for the user; -v shows the traceback
        if received:  # the signal's exception, turned into another one by library code it interrupted
            return _interrupted(args.command, received[0])
        if args.verbose:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"srdb {args.command}: error: {message[:800]}", file=sys.stderr)
        return 2
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())
