"""Environment for ROS processes started by the project (node, replay, tests) on machines without a ROS install.

The ROS wheels re-execute Python with their LD_LIBRARY_PATH on import; what they do not set is done here:
the RMW implementation, ``AMENT_PREFIX_PATH`` (so ament_index finds ``share/srdb_ros`` in this prefix) and
the discovery range.
"""

from __future__ import annotations

import os
import sys


def ros_environment(domain_id: int | None = None, localhost: bool = True, base: dict | None = None) -> dict[str, str]:
    """A copy of ``base`` (default ``os.environ``) ready for a ROS child process.

    ``localhost`` keeps DDS discovery on this machine (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``), as every
    test, demo and evaluation run of the project does.
    """
    env = dict(os.environ if base is None else base)
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    prefixes = [p for p in env.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    if sys.prefix not in prefixes:
        prefixes.append(sys.prefix)
    env["AMENT_PREFIX_PATH"] = os.pathsep.join(prefixes)
    if localhost:
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def apply_to_current_process(domain_id: int | None = None, localhost: bool = True) -> None:
    """Set the same variables in this process (before ``rclpy.init``)."""
    os.environ.update(ros_environment(domain_id, localhost))


def free_domain_id(seed: int | None = None) -> int:
    """A ROS domain id for one test or demo run (1..101), derived from the process id unless given."""
    return 1 + ((seed if seed is not None else os.getpid()) % 101)
