"""Where the package's installed data lives: share/srdb_ros (ament index, install prefix) or the source checkout."""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

PACKAGE = "srdb_ros"
BUNDLED_MODEL = "srdb_student.safetensors"


def _candidates() -> list[Path]:
    """Source checkout first, then share/srdb_ros under the prefixes this copy of the package may be installed in."""
    here = Path(__file__).resolve().parent
    found = [here.parent]  # the source checkout (package.xml beside the package)
    # <prefix>/lib/pythonX.Y/site-packages/srdb_ros -> <prefix>/share/srdb_ros (colcon, pip --prefix, venvs)
    if len(here.parents) > 3:
        found.append(here.parents[3] / "share" / PACKAGE)
    for scheme in (sysconfig.get_default_scheme(), f"{os.name}_user"):
        try:
            found.append(Path(sysconfig.get_path("data", scheme)) / "share" / PACKAGE)
        except KeyError:
            continue
    found.append(Path(sys.prefix) / "share" / PACKAGE)
    return found


def share_dir() -> Path:
    """``share/srdb_ros`` of this copy of the package (installed by colcon or pip), or the source checkout."""
    for path in _candidates():
        if (path / "package.xml").is_file() and (path / "models").is_dir():
            return path
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE))
    except Exception as exc:  # PackageNotFoundError, or ament_index_python missing
        raise FileNotFoundError(
            f"cannot find the {PACKAGE} share directory (looked in {', '.join(map(str, _candidates()))}): "
            f"source the ROS workspace (install/setup.bash) or reinstall the package"
        ) from exc


def bundled_model() -> Path:
    return share_dir() / "models" / BUNDLED_MODEL


def config_file(name: str) -> Path:
    return share_dir() / "config" / name
