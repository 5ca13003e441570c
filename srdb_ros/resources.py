"""Where the package's installed data lives: share/srdb_ros (ament index) or the source checkout."""

from __future__ import annotations

from pathlib import Path

PACKAGE = "srdb_ros"
BUNDLED_MODEL = "srdb_student.safetensors"


def share_dir() -> Path:
    """``share/srdb_ros`` of the installed package, or the source checkout when run from it."""
    source = Path(__file__).resolve().parents[1]
    if (source / "package.xml").is_file() and (source / "models").is_dir():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE))
    except Exception as exc:  # PackageNotFoundError, or ament_index_python missing
        raise FileNotFoundError(
            f"cannot find the {PACKAGE} share directory: source the ROS workspace (install/setup.bash) or "
            f"install the package (make env)"
        ) from exc


def bundled_model() -> Path:
    return share_dir() / "models" / BUNDLED_MODEL


def config_file(name: str) -> Path:
    return share_dir() / "config" / name
