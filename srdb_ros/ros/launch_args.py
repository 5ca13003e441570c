"""Launch arguments of ``enhance.launch.py`` that map onto node parameters, kept free of the launch library so
the rule "a launch argument overrides the parameter file only when the user gives it" is testable anywhere."""

from __future__ import annotations

# launch argument -> node parameter; an empty value (the default) leaves the parameter file's value in force
PARAMETER_ARGUMENTS: dict[str, tuple[str, str]] = {
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
}
BOOLEAN_PARAMETERS = ("force_engine_update", "managed")


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
        else:
            overrides[parameter] = value
    return overrides
