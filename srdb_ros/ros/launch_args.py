"""Launch arguments of ``enhance.launch.py`` that map onto node parameters, kept free of the launch library so
the rule "a launch argument overrides the parameter file only when the user gives it" is testable anywhere."""

from __future__ import annotations

from pathlib import Path

from .params import SPECS, read_params_file

# launch argument -> node parameter; an empty value (the default) leaves the parameter file's value in force
PARAMETER_ARGUMENTS: dict[str, tuple[str, str]] = {
    "cameras": ("cameras", "the cameras, e.g. [front,rear,thermal] (default: the parameter file's, else [eo, ir])"),
    "eo_task": ("eo.task", "EO task: deblur, sr or both (default: the parameter file's eo.task)"),
    "ir_task": ("ir.task", "IR task: deblur, sr or both (default: the parameter file's ir.task)"),
    "backend": ("backend", "auto, tensorrt, onnxruntime or torch (default: the parameter file's backend)"),
    "engine_path": ("engine_path", "TensorRT engine path, may contain {task} (default: the parameter file's)"),
    "force_engine_update": ("force_engine_update", "true: rebuild TensorRT engines at start (default: file's)"),
    "managed": (
        "managed",
        "true: lifecycle bring-up, the node waits for configure/activate (default: the file's, which starts at once)",
    ),
    "eo_transport": ("eo.transport", "EO input transport: raw or compressed (default: the parameter file's)"),
    "ir_transport": ("ir.transport", "IR input transport: raw or compressed (default: the parameter file's)"),
    "use_sim_time": ("use_sim_time", "true: the node's clock follows /clock (rosbag replay; default: the file's)"),
}
BOOLEAN_PARAMETERS = ("force_engine_update", "managed", "use_sim_time")
NODE_NAME = "enhance_node"


def argument_choices(argument: str) -> list[str] | None:
    """The values a launch argument accepts (``''``: the parameter file's value), for ``--show-args``; None when
    any string goes (paths)."""
    parameter = PARAMETER_ARGUMENTS[argument][0]
    if parameter in BOOLEAN_PARAMETERS:
        return ["", "true", "false"]
    spec = SPECS.get(parameter)
    return ["", *spec.choices] if spec is not None and spec.choices else None


def managed_in(params_file: str | Path) -> bool:
    """Whether a parameter file sets ``managed: true`` for this node (under ``/**`` or the node's name, with or
    without a namespace); a file that cannot be read says nothing (the node reports it)."""
    import yaml

    try:
        content = read_params_file(params_file)
    except (OSError, yaml.YAMLError):
        return False
    if not isinstance(content, dict):
        return False
    found = False
    for key, section in content.items():
        if key == "/**" or str(key).rstrip("/").split("/")[-1] == NODE_NAME:
            values = section.get("ros__parameters", {}) if isinstance(section, dict) else {}
            found = found or (isinstance(values, dict) and values.get("managed") is True)
    return found


def parameter_overrides(values: dict[str, str]) -> dict[str, object]:
    """Node parameters for the launch arguments the user set (non-empty), typed as the node declares them."""
    overrides: dict[str, object] = {}
    for argument, (parameter, _) in PARAMETER_ARGUMENTS.items():
        value = (values.get(argument) or "").strip()
        if not value:
            continue
        if parameter in BOOLEAN_PARAMETERS:
            if value.lower() not in ("true", "false"):
                raise ValueError(f"{argument} must be true or false, not {value!r}")
            overrides[parameter] = value.lower() == "true"
        elif parameter == "cameras":
            names = [name.strip() for name in value.strip("[]").split(",") if name.strip()]
            reason = SPECS["cameras"].check(names)
            if reason:
                raise ValueError(f"{argument}: {reason}")
            overrides[parameter] = names
        else:
            overrides[parameter] = value
    return overrides
