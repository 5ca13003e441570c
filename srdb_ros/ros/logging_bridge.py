"""Python ``logging`` records of the srdb_ros library (backend choice, ONNX export, engine builds) sent to a ROS
logger, so that under ``ros2 run`` and launch they reach the console and /rosout like the node's own lines."""

from __future__ import annotations

import logging

LIBRARY_LOGGER = "srdb_ros"


class RosLogHandler(logging.Handler):
    """Forwards each record to an rclpy logger at the matching severity."""

    def __init__(self, ros_logger) -> None:
        super().__init__(logging.DEBUG)
        self.ros_logger = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            if record.levelno >= logging.ERROR:
                self.ros_logger.error(text)
            elif record.levelno >= logging.WARNING:
                self.ros_logger.warning(text)
            elif record.levelno >= logging.INFO:
                self.ros_logger.info(text)
            else:
                self.ros_logger.debug(text)
        except Exception:  # noqa: BLE001 - logging must never take the node down
            self.handleError(record)


def route_library_logging(ros_logger) -> RosLogHandler:
    """Send the library's records (INFO and up) to ``ros_logger``; returns the handler (remove it to undo)."""
    handler = RosLogHandler(ros_logger)
    handler.setFormatter(logging.Formatter("%(message)s"))
    library = logging.getLogger(LIBRARY_LOGGER)
    library.addHandler(handler)
    library.setLevel(logging.INFO)
    library.propagate = False
    return handler
