"""Issue 18: imports only point down the layers that docs/ARCHITECTURE.md draws."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "srdb_ros"

# room -> the rooms it may import (docs/ARCHITECTURE.md); "resources" is the share-folder lookup, ground floor
ALLOWED = {
    "core": set(),
    "resources": set(),
    "models": {"core", "resources"},
    "data": {"core", "resources"},
    "quality": {"core", "data", "models"},
    "export": {"core", "models"},
    "inference": {"core", "models", "export", "resources"},
    "benchmark": {"core", "models", "data", "quality", "inference", "export", "resources"},
    "training": {"core", "models", "data", "quality", "export", "resources"},
    "ros": {"core", "models", "inference", "resources"},
    "evaluation": {"core", "data", "quality", "ros", "resources"},
    "cli": {
        "core",
        "models",
        "data",
        "quality",
        "export",
        "inference",
        "benchmark",
        "training",
        "ros",
        "evaluation",
        "resources",
    },
}
ROS_FREE = {"core", "models", "data", "quality", "export", "inference", "benchmark", "training"}
ROS_MODULES = {"rclpy", "sensor_msgs", "std_msgs", "diagnostic_msgs", "rcl_interfaces", "launch", "launch_ros"}


def _room(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(srdb_ros rooms, top-level third-party modules) imported by one file, lazily imported ones included."""
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = list(rel.parts[:-1]) if path.name != "__init__.py" else list(rel.parts[:-1])
    rooms, external = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = parts[: len(parts) - (node.level - 1)]
            target = [*base, *(node.module.split(".") if node.module else [])]
            names = [target[0]] if target else [alias.name for alias in node.names]
            rooms.update(names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            top = node.module.split(".")[0]
            if top == "srdb_ros":
                rooms.add(node.module.split(".")[1])
            else:
                external.add(top)
        elif isinstance(node, ast.Import):
            external.update(alias.name.split(".")[0] for alias in node.names)
    return rooms, external


def test_every_import_points_down_a_layer():
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        room = _room(path)
        if room == "__init__":
            continue
        assert room in ALLOWED, f"{path}: room {room!r} is not in the layer table (docs/ARCHITECTURE.md)"
        rooms, external = _imports(path)
        for target in rooms - {room}:
            if target not in ALLOWED[room]:
                violations.append(f"{path.relative_to(ROOT)}: {room} imports {target}")
        if room in ROS_FREE and external & ROS_MODULES:
            violations.append(f"{path.relative_to(ROOT)}: {room} must stay ROS-free, imports {external & ROS_MODULES}")
    assert not violations, "\n".join(violations)


def test_the_layer_table_has_no_cycles_and_matches_the_docs():
    order: list[str] = []
    pending = dict(ALLOWED)
    while pending:
        ready = [room for room, deps in pending.items() if deps <= set(order)]
        assert ready, f"cycle among {sorted(pending)}"
        order += sorted(ready)
        for room in ready:
            del pending[room]
    doc = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    for room in ALLOWED:
        assert f"`{room}`" in doc, f"docs/ARCHITECTURE.md does not describe {room}"
