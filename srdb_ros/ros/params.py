"""Every parameter of the enhance node, declared once (``PARAMS``) with its descriptor and validation rule.

``config/enhance.yaml`` (the defaults), ``config/enhance.schema.json`` (the schema) and ``docs/node.md``'s parameter
table are generated from this table (``python -m srdb_ros.ros.params --write``); a test checks that they
are up to date.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..core.contract import BLUR_OUTPUT, CAMERA_NAME, DEFAULT_CAMERAS, DOMAINS, OUTPUT_NAMES, TASKS, TRANSPORTS
from ..core.image_codec import COMPRESSED_FORMATS, ENCODINGS
from ..inference.backends import BACKENDS, DEVICE, PRECISIONS
from ..inference.processing import AGC_MODES, MIN_TILE_STEP

# the largest pass-through threshold at which `srdb score --suite deblur` passes no frame that deblurring improves
# by more than 0.1 dB (docs/node.md, "Blur estimate and sharp frames")
MIN_BLUR_PX = 1.21
INPUT_QOS = ("sensor_data", "reliable")
COMPRESSED_OUTPUTS = ("none", *COMPRESSED_FORMATS)
DOMAIN_TASKS = {"eo": "deblur", "ir": "sr"}  # a camera's default task by its domain
RESERVED_TOPIC_PARTS = (*OUTPUT_NAMES.values(), BLUR_OUTPUT, "image_raw", "camera_info")  # no camera's name


class ParameterError(ValueError):
    """A parameter given to the node at start is unknown, of the wrong type or out of range."""


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    description: str
    read_only: bool = False
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None  # a regular expression the whole (string) value must match

    def check(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable (None when it is)."""
        if isinstance(self.default, list):
            return self._check_names(value)
        if type(value) is not type(self.default) and not (isinstance(self.default, float) and isinstance(value, int)):
            return f"{self.name} must be a {type(self.default).__name__}, got {type(value).__name__}"
        if self.choices is not None and value not in self.choices:
            return f"{self.name} must be one of {list(self.choices)}, got {value!r}"
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            return f"{self.name}: {value!r} is not one of {self.description.split(';')[0]}"
        if self.minimum is not None and value < self.minimum:
            return f"{self.name} must be >= {self.minimum}, got {value!r}"
        if self.maximum is not None and value > self.maximum:
            return f"{self.name} must be <= {self.maximum}, got {value!r}"
        return None

    def _check_names(self, value: Any) -> str | None:
        """A string array of distinct names, each matching ``pattern`` (``cameras``)."""
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return f"{self.name} must be a list of strings, got {type(value).__name__}"
        if not value:
            return f"{self.name} must name at least one"
        bad = [v for v in value if not re.fullmatch(self.pattern, v)]
        if bad:
            return f"{self.name}: {bad[0]!r} is not a name (lower case letters, digits and _, starting with a letter)"
        if len(set(value)) < len(value):
            return f"{self.name} names {max(value, key=value.count)!r} twice"
        return None


NODE_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "backend",
        "auto",
        "Inference backend; auto tries TensorRT (needs engine_path), PyTorch on CUDA, ONNX Runtime, PyTorch on CPU "
        "and logs its choice",
        True,
        BACKENDS,
    ),
    ParamSpec("weights_path", "", "Model weights (.safetensors); empty = the bundled student model", True),
    ParamSpec(
        "onnx_path",
        "",
        "ONNX model(s) for onnxruntime/tensorrt; may contain {task}; empty = exported from weights_path on first use",
        True,
    ),
    ParamSpec(
        "engine_path",
        "",
        "TensorRT engine(s); may contain {task}; built from the ONNX when missing or built for another GPU/TensorRT",
        True,
    ),
    ParamSpec("force_engine_update", False, "Rebuild TensorRT engines at start even if they match", True),
    ParamSpec(
        "cache_dir",
        "",
        "Where ONNX graphs exported from weights_path are kept; empty = $SRDB_CACHE_DIR, else ~/.cache/srdb_ros. "
        "Unwritable: a temporary folder (one warning); a <weights>_<task>.onnx beside the weights needs none",
        True,
    ),
    ParamSpec(
        "compiled_path",
        "",
        "AOTInductor package(s) from `srdb compile` for the torch backend, may contain {task}; used for frames of "
        "the size compiled for (loads in under a second); empty = none",
        True,
    ),
    ParamSpec(
        "device",
        "auto",
        "auto, cpu, cuda or cuda:N; cuda is the current GPU, cuda:N GPU number N",
        True,
        pattern=DEVICE,
    ),
    ParamSpec("precision", "fp16", "fp32, fp16 or bf16 on CUDA (CPU always runs fp32)", True, PRECISIONS),
    ParamSpec(
        "managed",
        False,
        "Lifecycle bring-up: wait for configure (loads the backend, builds engines) and activate (starts processing) "
        "instead of doing both at start",
        True,
    ),
    ParamSpec(
        "cameras",
        list(DEFAULT_CAMERAS),
        "The cameras this node processes, any number; each has the <camera>.* parameters below and the topics "
        "<camera>/image_raw, <camera>/deblurred/image_raw, ...",
        True,
        pattern=CAMERA_NAME,
    ),
    ParamSpec(
        "agc.mode",
        "percentile",
        "Gain control of 16-bit and 32FC1 frames; outputs are mapped back to the input's units",
        False,
        AGC_MODES,
    ),
    ParamSpec("agc.low_percentile", 1.0, "Percentile mapped to black (percentile mode)", False, None, 0.0, 100.0),
    ParamSpec("agc.high_percentile", 99.0, "Percentile mapped to white (percentile mode)", False, None, 0.0, 100.0),
    ParamSpec("agc.fixed_min", 0.0, "Count (or 32FC1 value) mapped to black (fixed mode)"),
    ParamSpec("agc.fixed_max", 65535.0, "Count (or 32FC1 value) mapped to white (fixed mode)"),
    ParamSpec("compressed.jpeg_quality", 95, "JPEG quality of compressed outputs", False, None, 1, 100),
    ParamSpec("compressed.png_level", 3, "PNG compression level of compressed outputs", False, None, 0, 9),
    ParamSpec(
        "input_qos",
        "sensor_data",
        "Default input QoS: sensor_data (best effort) or reliable; qos_overrides.<topic>.* parameters override it",
        True,
        INPUT_QOS,
    ),
    ParamSpec(
        "qos_depth",
        1,
        "History depth of inputs and outputs (1: only the newest frame is processed; older ones are dropped, counted)",
        True,
        None,
        1,
    ),
    ParamSpec(
        "camera_info_tolerance",
        0.0,
        "Seconds an input camera_info's stamp may differ from its image's to be paired with it; 0 = the same stamp. "
        "Frames without a match go out without camera_info (counted as camera_info unmatched)",
        False,
        None,
        0.0,
    ),
    ParamSpec(
        "batch_cameras",
        True,
        "Run frames of the same task and size from any cameras in one backend call (at most 2 a call on a CPU)",
    ),
    ParamSpec(
        "max_pixels",
        0,
        "Frames with more pixels are rejected (logged, counted); 0 = the most each camera's task fits in "
        "memory_budget_mb (measured peak bytes per pixel, docs/node.md)",
        False,
        None,
        0,
    ),
    ParamSpec(
        "memory_budget_mb",
        0.0,
        "Memory one frame may take (host RAM on CPU, GPU memory on CUDA) when max_pixels is 0; 0 = half of what "
        "is available at configure",
        True,
        None,
        0.0,
    ),
    ParamSpec("min_side", 4, "Frames with a smaller side are rejected", False, None, 1),
    ParamSpec("tile_size", 0, "Run frames larger than this (pixels) in overlapping tiles; 0 = never", False, None, 0),
    ParamSpec("tile_overlap", 16, "Tile overlap in input pixels", False, None, 0, 1024),
    ParamSpec(
        "diagnostics.min_rate",
        0.0,
        "WARN when a camera's output rate (Hz) falls below this while it receives frames; 0 = off",
        False,
        None,
        0.0,
    ),
    ParamSpec(
        "diagnostics.stale_after",
        5.0,
        "WARN when an active camera received no frame for this many seconds; 0 = off",
        False,
        None,
        0.0,
        86400.0,
    ),
    ParamSpec(
        "diagnostics.max_stamp_age",
        0.0,
        "WARN when input header stamps are older than this many seconds by the node's clock (use_sim_time "
        "honoured); 0 = off",
        False,
        None,
        0.0,
        86400.0,
    ),
    ParamSpec("diagnostics.period", 1.0, "Seconds between /diagnostics messages", True, None, 0.05, 3600.0),
    ParamSpec(
        "diagnostics.error_hold",
        5.0,
        "Seconds /diagnostics stays ERROR after a frame failed (counters never reset)",
        False,
        None,
        0.0,
        3600.0,
    ),
    ParamSpec("diagnostics.window", 100, "Frames in the latency statistics window", True, None, 2, 100000),
    ParamSpec("hardware_id", "srdb_enhancer", "hardware_id reported on /diagnostics", True),
    ParamSpec("log_every_n", 100, "Log one INFO line per this many frames per camera; 0 = never", False, None, 0),
)

# each camera's parameters, named <camera>.<name>; "{cam}" in a description is the camera's name
CAMERA_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "domain",
        "eo",
        "What {cam} sees: eo (visible) or ir (thermal); sets {cam}.task's default (eo: deblur, ir: sr); default ir "
        "for a camera named ir, else eo",
        True,
        DOMAINS,
    ),
    ParamSpec("enabled", True, "Process {cam} (its topics exist only while enabled)"),
    ParamSpec("task", "deblur", "{cam} task: deblur, sr or both", False, TASKS),
    ParamSpec(
        "transport",
        "raw",
        "{cam} input: raw (sensor_msgs/Image on {cam}/image_raw) or compressed (CompressedImage on "
        "{cam}/image_raw/compressed)",
        False,
        TRANSPORTS,
    ),
    ParamSpec(
        "compressed_outputs",
        "none",
        "Also publish each output image of {cam} compressed on <output>/image_raw/compressed (image_transport's "
        "compressed format: jpeg 8 bit, png keeps 16 bit), encoded only while subscribed; none = raw only",
        False,
        COMPRESSED_OUTPUTS,
    ),
    ParamSpec(
        "min_blur_px",
        MIN_BLUR_PX,
        "Frames whose estimated blur ({cam}/blur) is shorter (input pixels) go out on the deblurred topic unchanged, "
        "without the deblur decoder; 0 = deblur every frame",
        False,
        None,
        0.0,
    ),
)
CAMERA_LEAVES = tuple(spec.name for spec in CAMERA_PARAMS)


def default_domain(camera: str) -> str:
    return "ir" if camera == "ir" else "eo"


def camera_specs(camera: str, domain: str | None = None) -> tuple[ParamSpec, ...]:
    """The parameters of one camera, with the defaults of its domain."""
    domain = domain or default_domain(camera)
    defaults = {"domain": domain, "task": DOMAIN_TASKS[domain]}
    return tuple(
        replace(
            spec,
            name=f"{camera}.{spec.name}",
            default=defaults.get(spec.name, spec.default),
            description=spec.description.format(cam=camera),
        )
        for spec in CAMERA_PARAMS
    )


def node_specs(start: Mapping[str, Any] | None = None) -> dict[str, ParamSpec]:
    """The parameter table of a node started with these values (``cameras`` and ``<camera>.domain`` decide which
    camera parameters exist and their defaults), in declaration order. Raises :class:`ParameterError` for a bad
    camera list or domain."""
    start = start or {}
    node_wide = {spec.name: spec for spec in NODE_PARAMS}
    cameras = start.get("cameras", node_wide["cameras"].default)
    reason = node_wide["cameras"].check(cameras)
    if reason:
        raise ParameterError(reason)
    groups = {name.split(".")[0] for name in node_wide} | {"qos_overrides", *RESERVED_TOPIC_PARTS}
    taken = sorted(groups & set(cameras))
    if taken:
        raise ParameterError(f"cameras: {taken[0]!r} is taken by the node's own parameters; name the camera otherwise")
    table: dict[str, ParamSpec] = {}
    for name, spec in node_wide.items():
        table[name] = spec
        if name == "cameras":
            for camera in cameras:
                domain = start.get(f"{camera}.domain", default_domain(camera))
                if domain not in DOMAINS:
                    raise ParameterError(f"{camera}.domain must be one of {list(DOMAINS)}, got {domain!r}")
                table.update((spec.name, spec) for spec in camera_specs(camera, domain))
    return table


SPECS: dict[str, ParamSpec] = node_specs()  # the table of a node with the default cameras
PARAMS: tuple[ParamSpec, ...] = tuple(SPECS.values())
ROS_OWN = ("use_sim_time", "start_type_description_service")  # declared by rclpy itself
ROS_OWN_PREFIXES = ("qos_overrides.",)


TYPO_SIMILARITY = 0.8  # difflib ratio from which an unknown name counts as a typo of one of ours ("eo.taks")


def descriptor(spec: ParamSpec):
    """The rclpy ParameterDescriptor of a parameter: description, read-only flag and numeric range."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    extra = f" (one of {', '.join(spec.choices)})" if spec.choices else ""
    d = ParameterDescriptor(description=spec.description + extra, read_only=spec.read_only)
    if isinstance(spec.default, bool) or spec.minimum is None:
        return d
    if isinstance(spec.default, int):
        top = int(spec.maximum) if spec.maximum is not None else 2**62
        d.integer_range = [IntegerRange(from_value=int(spec.minimum), to_value=top, step=1)]
    elif isinstance(spec.default, float):
        top = float(spec.maximum) if spec.maximum is not None else 1e300
        d.floating_point_range = [FloatingPointRange(from_value=float(spec.minimum), to_value=top, step=0.0)]
    return d


def check_overrides(overrides: dict[str, Any]) -> list[str]:
    """Check start-up values (``-p``, parameter files): a value of the wrong type or range, or a name that is a
    near miss of one of ours (a typo: the error names the close parameter), is refused. Names unlike any of ours
    are other nodes' (a shared ``/**`` parameter file), as are the parameters of cameras not in ``cameras``:
    returned, for one warning, and ignored as rclpy and rclcpp nodes ignore undeclared overrides."""
    import difflib

    specs = node_specs(overrides)
    foreign = []
    for name, value in overrides.items():
        if name in ROS_OWN or name.startswith(ROS_OWN_PREFIXES):
            continue
        spec = specs.get(name)
        group, _, leaf = name.partition(".")
        if spec is None and leaf in CAMERA_LEAVES and re.fullmatch(CAMERA_NAME, group):
            foreign.append(name)  # a parameter of a camera this node does not have (another node's)
            continue
        if spec is None:
            close = difflib.get_close_matches(name, specs, n=1, cutoff=TYPO_SIMILARITY)
            if close:
                raise ParameterError(f"unknown parameter {name!r}; did you mean {close[0]}?")
            foreign.append(name)
            continue
        reason = spec.check(value)
        if reason:
            raise ParameterError(reason)
    return foreign


def read_params_file(path) -> Any:
    """A ROS parameter file's content, read as rcl reads it: safely, with tagged values as their plain node
    (launch_ros writes list parameters as ``!!python/tuple`` sequences). Raises OSError or yaml.YAMLError."""
    import yaml

    with open(path) as f:
        return yaml.load(f, Loader=_untagged_loader())  # noqa: S506 - a safe loader that keeps tags plain


def _untagged_loader():
    """A safe YAML loader that reads tagged values as their plain node."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def plain(loader, _suffix, node):
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node)
        return loader.construct_scalar(node)

    Loader.add_multi_constructor("", plain)
    return Loader


def check_params_files(argv: list[str]) -> None:
    """Every ``--params-file`` of a ROS command line exists and is a YAML mapping (rcl would end in a traceback)."""
    import yaml

    for flag, item in zip(argv, argv[1:]):
        if flag != "--params-file":
            continue
        try:
            content = read_params_file(item)
        except OSError as exc:
            raise ParameterError(f"parameter file {item}: {exc.strerror.lower()}") from None
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            at = f" at line {where.line + 1}" if where is not None else ""
            raise ParameterError(f"parameter file {item}: not valid YAML{at}") from None
        if not isinstance(content, dict):
            raise ParameterError(f"parameter file {item}: expected '<node name or /**>: ros__parameters: ...'")


def command_line_values(argv: list[str]) -> dict[str, Any]:
    """``-p NAME:=VALUE`` pairs of a ROS command line, typed as rcl types them (YAML). rcl drops a ``-p`` whose
    type differs from a parameter file's value without a word, so they are checked from the command line."""
    import yaml

    values: dict[str, Any] = {}
    for flag, item in zip(argv, argv[1:]):
        if flag in ("-p", "--param") and ":=" in item:
            name, _, text = item.partition(":=")
            try:
                values[name] = yaml.safe_load(text)
            except yaml.YAMLError:
                values[name] = text
    return values


def declare_all(node) -> dict[str, ParamSpec]:
    """Validate the node's start-up values by the runtime rules, then declare every parameter with its
    descriptor; returns the node's parameter table. Raises :class:`ParameterError` (one line) for anything
    invalid."""
    overrides = {name: p.value for name, p in getattr(node, "_parameter_overrides", {}).items()}
    foreign = check_overrides(overrides)
    specs = node_specs(overrides)
    if foreign:
        cameras = ", ".join(overrides.get("cameras", DEFAULT_CAMERAS))
        node.get_logger().warning(
            f"ignoring {len(foreign)} parameter(s) this node does not have (meant for other nodes? its cameras: "
            f"{cameras}): " + ", ".join(sorted(foreign)[:20])
        )
    start = {name: overrides.get(name, spec.default) for name, spec in specs.items()}
    reason = validate(start, start.__getitem__, specs)
    if reason:
        raise ParameterError(reason)
    for spec in specs.values():
        node.declare_parameter(spec.name, spec.default, descriptor(spec))
    return specs


TOPICS = (  # <cam> is each name in `cameras` (default eo, ir)
    ("<cam>/image_raw", "in", "sensor_msgs/Image (<cam>.transport raw); encodings below"),
    ("<cam>/image_raw/compressed", "in", "sensor_msgs/CompressedImage (<cam>.transport compressed): jpeg, png"),
    ("<cam>/camera_info", "in", "sensor_msgs/CameraInfo (optional)"),
    ("<cam>/deblurred/image_raw", "out", "sensor_msgs/Image, same size (task deblur or both)"),
    ("<cam>/deblurred/camera_info", "out", "sensor_msgs/CameraInfo of the input, same stamp"),
    ("<cam>/super_resolved/image_raw", "out", "sensor_msgs/Image, x4 (task sr or both)"),
    ("<cam>/super_resolved/camera_info", "out", "sensor_msgs/CameraInfo scaled x4, same stamp"),
    ("<cam>/<output>/image_raw/compressed", "out", "sensor_msgs/CompressedImage (<cam>.compressed_outputs jpeg/png)"),
    ("<cam>/blur", "out", "geometry_msgs/Vector3Stamped: the frame's blur (x, y: axis x length; z: length, px)"),
    ("/diagnostics", "out", "diagnostic_msgs/DiagnosticArray"),
)


def usage(command: str = "ros2 run srdb_ros enhance_node") -> str:
    """``--help`` text: how to run the node, its topics (remappable) and every parameter with its default."""
    lines = [
        f"usage: {command} [--ros-args [-p NAME:=VALUE]... [--params-file FILE] [-r FROM:=TO]... [--log-level LEVEL]]",
        "",
        "Deblurs and/or x4 super-resolves EO and IR camera frames (srdb_ros). Without --params-file the",
        "defaults below apply (config/enhance.yaml in share/srdb_ros holds the same values).",
        "",
        "examples:",
        f"  {command} --ros-args -p eo.task:=both -r eo/image_raw:=/camera/image_raw",
        f"  {command} --ros-args --params-file my_params.yaml -r __ns:=/front",
        f"  {command} --ros-args -p cameras:=[front,rear,thermal] -p thermal.domain:=ir",
        "",
        "topics (relative names: remap with -r NAME:=NEW, or set a namespace with -r __ns:=/NS):",
        *[f"  {name:34s} {direction:4s} {kind}" for name, direction, kind in TOPICS],
        f"  input encodings: {', '.join(ENCODINGS)}",
        "  (Bayer, YUV and alpha are converted to rgb8/rgb16/bgr8; outputs keep display encodings)",
        "  QoS: -p qos_overrides./eo/image_raw.subscription.reliability:=reliable (any topic, policy)",
        "",
        "parameters (name, default, meaning; read-only ones are fixed at start):",
    ]
    for spec in PARAMS:
        choices = f" [{', '.join(spec.choices)}]" if spec.choices else ""
        flag = " (read-only)" if spec.read_only else ""
        lines.append(f"  {spec.name:22s} {spec.default!r:16} {spec.description}{choices}{flag}")
    return "\n".join(lines)


SECTIONS = {  # comments above groups of parameters in the generated enhance.yaml
    "backend": "Model and backend (read-only after start)",
    "cameras": "Cameras: any number, each with its own group; task is deblur | sr | both, changeable at runtime",
    "agc.mode": "16-bit thermal automatic gain control",
    "input_qos": "Transport and load",
    "diagnostics.min_rate": "Diagnostics on /diagnostics",
}
GENERATED = "generated from srdb_ros/ros/params.py by `python -m srdb_ros.ros.params --write`; edit that table"
_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}


def _schema_entry(spec: ParamSpec) -> dict:
    entry = {"type": _JSON_TYPES[type(spec.default)], "default": spec.default, "description": spec.description}
    if spec.choices:
        entry["enum"] = list(spec.choices)
    if spec.pattern:
        pattern = {"pattern": f"^(?:{spec.pattern})$"}
        if isinstance(spec.default, list):
            entry.update(items={"type": "string", **pattern}, minItems=1, uniqueItems=True)
        else:
            entry.update(pattern)
    if spec.minimum is not None:
        entry["minimum"] = spec.minimum
    if spec.maximum is not None:
        entry["maximum"] = spec.maximum
    return entry


def json_schema() -> dict:
    """JSON schema of a parameter file (``/**: ros__parameters:``), nested as the dotted names are; a group not
    named here is a camera of ``cameras`` (the defaults of the eo domain)."""
    camera = {
        "type": "object",
        "additionalProperties": False,
        "properties": {spec.name.split(".")[1]: _schema_entry(spec) for spec in camera_specs("<camera>", "eo")},
    }
    root: dict = {"type": "object", "additionalProperties": camera, "properties": {}}
    for spec in PARAMS:
        *groups, leaf = spec.name.split(".")
        node = root
        for group in groups:
            node = node["properties"].setdefault(
                group, {"type": "object", "additionalProperties": False, "properties": {}}
            )
        node["properties"][leaf] = _schema_entry(spec)
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Parameters of srdb_ros enhance_node",
        "$comment": GENERATED,
        "type": "object",
        "properties": {"/**": {"type": "object", "properties": {"ros__parameters": root}}},
    }


def _yaml_value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(map(_yaml_value, value)) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value}'" if value == "" or value[:1] in "{[*&!|>%@`" else value
    return repr(value)


def params_yaml() -> str:
    """The defaults as a ROS parameter file, one commented line per parameter."""
    lines = [
        f"# Defaults of srdb_ros enhance_node ({GENERATED}).",
        "# Schema: enhance.schema.json. Use with",
        "#   ros2 run srdb_ros enhance_node --ros-args --params-file config/enhance.yaml",
        "#   ros2 launch srdb_ros enhance.launch.py params_file:=/path/to/your.yaml",
        "/**:",
        "  ros__parameters:",
    ]
    open_group = None
    for spec in PARAMS:
        if spec.name in SECTIONS:
            lines.append(f"    # {SECTIONS[spec.name]}")
        *groups, leaf = spec.name.split(".")
        group = groups[0] if groups else None
        if group and group != open_group:
            lines.append(f"    {group}:")
        open_group = group
        indent = "      " if group else "    "
        entry = f"{indent}{leaf}: {_yaml_value(spec.default)}"
        lines.append(f"{entry:40s} # {spec.description}")
    return "\n".join(lines) + "\n"


def markdown_table() -> str:
    """The parameter table of ``docs/node.md``."""
    rows = ["| parameter | default | meaning |", "|---|---|---|"]
    for spec in PARAMS:
        choices = f" (one of {', '.join(f'`{c}`' for c in spec.choices)})" if spec.choices else ""
        runtime = "" if spec.read_only else "; changeable at runtime"
        default = "`''`" if spec.default == "" else f"`{_yaml_value(spec.default)}`"
        rows.append(f"| `{spec.name}` | {default} | {spec.description}{choices}{runtime} |")
    return "\n".join(rows) + "\n"


TABLE_BEGIN, TABLE_END = "<!-- parameters: begin (generated) -->", "<!-- parameters: end -->"


def generated_files(root) -> dict:
    """{path: content} of every file generated from ``PARAMS`` (``docs/node.md`` with its table replaced)."""
    import json
    from pathlib import Path

    root = Path(root)
    node_doc = (root / "docs" / "node.md").read_text()
    start, end = node_doc.index(TABLE_BEGIN) + len(TABLE_BEGIN), node_doc.index(TABLE_END)
    return {
        root / "config" / "enhance.yaml": params_yaml(),
        root / "config" / "enhance.schema.json": json.dumps(json_schema(), indent=2) + "\n",
        root / "docs" / "node.md": node_doc[:start] + "\n" + markdown_table() + node_doc[end:],
    }


def validate(
    changes: dict[str, Any], current: Callable[[str], Any], specs: Mapping[str, ParamSpec] = SPECS
) -> str | None:
    """Reason to reject a set of parameter changes (None to accept) to a node with the parameter table ``specs``;
    checks cross-parameter rules too."""
    for name, value in changes.items():
        if name in ROS_OWN or name.startswith(ROS_OWN_PREFIXES):
            continue  # rclpy's own parameters (use_sim_time, ...) are rclpy's to check
        spec = specs.get(name)
        if spec is None:
            return f"unknown parameter {name}"
        reason = spec.check(value)
        if reason:
            return reason

    def get(name: str) -> Any:
        return changes[name] if name in changes else current(name)

    if not get("agc.low_percentile") < get("agc.high_percentile") <= 100.0:
        return "agc percentiles must satisfy low < high <= 100"
    if not get("agc.fixed_min") < get("agc.fixed_max"):
        return "agc.fixed_min must be below agc.fixed_max"
    if get("tile_size") and get("tile_size") < 2 * get("tile_overlap") + MIN_TILE_STEP:
        return f"tile_size must be 0 (off) or at least 2 * tile_overlap + {MIN_TILE_STEP}"
    return None


if __name__ == "__main__":
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(description="Regenerate (or --check) the files made from the PARAMS table.")
    parser.add_argument(
        "--write", action="store_true", help="write config/enhance.yaml, the schema and docs/node.md's table"
    )
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[2]), help="the source checkout")
    options = parser.parse_args()
    stale = [path for path, text in generated_files(options.root).items() if path.read_text() != text]
    for path, text in generated_files(options.root).items():
        if options.write and path in stale:
            path.write_text(text)
            print(f"wrote {path}")
    if stale and not options.write:
        raise SystemExit(f"out of date: {', '.join(map(str, stale))} (run with --write)")
