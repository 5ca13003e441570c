"""The network's input/output contract, written down once: tasks, padding, scale, tensor and output names.

Every user (model, exporter, backends, enhancer, node, scoring, evaluation) imports these rather than
repeating them.
"""

from __future__ import annotations

TASKS = ("deblur", "sr", "both")
PAD_MULTIPLE = 4  # two stride-2 encoder levels: height and width are padded to a multiple of this
SCALE = 4  # the SR branch's upscale factor (ModelConfig.upscale)
DEFAULT_CAMERAS = ("eo", "ir")  # the node's cameras unless its `cameras` parameter names others
DOMAINS = ("eo", "ir")  # what a camera sees: visible (EO) or thermal (IR)
CAMERA_NAME = r"[a-z][a-z0-9_]{0,31}"  # a camera's name: its parameter group and the first part of its topics

# the paper's operating points, (width, height) of the network input: deblur 1240x984, SR 310x246 -> 1240x984
PAPER_INPUT_SIZES = {"deblur": (1240, 984), "sr": (310, 246), "both": (310, 246)}


def parse_size(text: str) -> tuple[int, int]:
    """``WxH`` (e.g. ``640x512``) as ``(width, height)``; a clear error for anything else."""
    parts = text.lower().strip().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"size {text!r}: expected WIDTHxHEIGHT with positive integers, e.g. 640x512")
    return int(parts[0]), int(parts[1])


INPUT_NAME = "image"  # ONNX / TensorRT input, 1x3xHxW float in [0, 1]
# per single task: ONNX output name == Enhancer result field == the node's output camera name
OUTPUT_NAMES = {"deblur": "deblurred", "sr": "super_resolved"}
BLUR_OUTPUT = "blur"  # the blur estimator's N x 3 (x, y, length in input pixels), an extra output when present
TRANSPORTS = ("raw", "compressed")  # image_transport's names for sensor_msgs/Image and CompressedImage inputs


def input_topic(camera: str, transport: str = "raw") -> str:
    """A camera's input image topic (relative): ``eo/image_raw``, or ``eo/image_raw/compressed``."""
    return f"{camera}/image_raw" + ("/compressed" if transport == "compressed" else "")


def output_topic(camera: str, task: str, kind: str = "image_raw") -> str:
    """An output topic (relative) by the image_transport camera convention: the image and its sibling
    ``camera_info`` under ``<camera>/<output name>/`` (``eo/super_resolved/image_raw``)."""
    return f"{camera}/{OUTPUT_NAMES[task]}/{kind}"


def blur_topic(camera: str) -> str:
    """A camera's blur estimate (geometry_msgs/Vector3Stamped, relative): ``eo/blur``."""
    return f"{camera}/blur"


def output_tasks(task: str) -> tuple[str, ...]:
    """The single tasks a task produces, in output order (``both`` -> deblur, sr)."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    return ("deblur", "sr") if task == "both" else (task,)


def task_outputs(task: str, blur: bool = False) -> list[str]:
    """Output tensor names of a task's graph, in order (then the blur estimate, for a model with an estimator)."""
    return [OUTPUT_NAMES[t] for t in output_tasks(task)] + ([BLUR_OUTPUT] if blur else [])


def task_of_output(name: str) -> str:
    """``deblur`` or ``sr`` for an output name or a topic naming one (``/eo/super_resolved/image_raw``)."""
    parts = name.strip("/").split("/")
    for task, output in OUTPUT_NAMES.items():
        if output in parts:
            return task
    raise ValueError(f"{name!r} is not an output of the network ({', '.join(OUTPUT_NAMES.values())})")


def full_scale(deblur_outputs: list):
    """The full-resolution deblurred image of the decoder's ``[1/4, 1/2, full]`` (or ``[full]``) outputs."""
    return deblur_outputs[-1]


def split_outputs(task: str, outputs: list) -> dict:
    """A backend's ordered outputs as ``{single task: output}``, plus ``blur`` when the graph has the estimate."""
    return dict(zip((*output_tasks(task), BLUR_OUTPUT), outputs))


def outputs_by_name(names: list[str], outputs: list) -> dict:
    """Outputs of a graph, named as exported (``deblurred``, ``super_resolved``, ``blur``), as ``split_outputs``
    keys them."""
    keys = {output: task for task, output in OUTPUT_NAMES.items()} | {BLUR_OUTPUT: BLUR_OUTPUT}
    return {keys[name]: value for name, value in zip(names, outputs)}


def camera_of(topic: str) -> str:
    """The camera of one of its topics: ``front`` from ``/ns/front/super_resolved/image_raw``, ``/front/blur``,
    ``front/image_raw`` or ``front/camera_info`` (the part before the output, ``blur``, ``image_raw`` or
    ``camera_info``)."""
    parts = topic.strip("/").split("/")
    markers = (*OUTPUT_NAMES.values(), BLUR_OUTPUT, "image_raw", "camera_info", "ground_truth")
    for i, part in enumerate(parts):
        if part in markers and i > 0:
            return parts[i - 1]
    raise ValueError(f"{topic!r} names no camera (<camera>/image_raw, <camera>/<output>/..., <camera>/blur)")
