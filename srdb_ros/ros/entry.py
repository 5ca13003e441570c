"""``enhance_node``'s entry point: installs quiet SIGINT/SIGTERM handling before the heavy imports (PyTorch,
rclpy), so that a signal at any moment of start-up ends the process with exit 0 and no traceback. rclpy
installs its own handlers once it initialises."""

from __future__ import annotations

import signal
import sys


def _exit_quietly(signum, frame) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _exit_quietly)
    from .enhance_node import main as node_main

    return node_main(argv)


if __name__ == "__main__":
    sys.exit(main())
