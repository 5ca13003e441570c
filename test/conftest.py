"""Shared fixtures. Every ROS process of the test run stays on this machine
(ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST) and uses a ROS_DOMAIN_ID of its own."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import torch

from srdb_ros.ros.env import free_domain_id, ros_environment

ROOT = Path(__file__).resolve().parents[1]

os.environ.update(ros_environment(domain_id=free_domain_id(), localhost=True))
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Keep ONNX exports of the test run out of the user's cache."""
    os.environ["SRDB_CACHE_DIR"] = str(tmp_path_factory.mktemp("srdb_cache"))


@pytest.fixture(scope="session")
def student_weights(tmp_path_factory) -> Path:
    """A seeded, randomly initialised student saved as safetensors (tests must not depend on training)."""
    from srdb_ros.models import build_model, save_model

    torch.manual_seed(0)
    return save_model(build_model("student"), tmp_path_factory.mktemp("weights") / "student.safetensors")


@pytest.fixture
def capture_logger(caplog):
    """``capture_logger(name)``: caplog attached to the logger a test reads, at INFO. Under ``colcon test``
    launch_testing's pytest plugins import ``launch``, whose logger class stops every logger made afterwards from
    propagating to the root logger that caplog listens on."""
    attached = []

    def attach(name: str, level: int = logging.INFO):
        logger = logging.getLogger(name)
        attached.append((logger, logger.propagate, logger.level))
        logger.addHandler(caplog.handler)
        logger.propagate = False  # recorded once, by the handler above, whether or not launch was imported
        logger.setLevel(level)
        return caplog

    yield attach
    for logger, propagate, level in attached:
        logger.removeHandler(caplog.handler)
        logger.propagate = propagate
        logger.setLevel(level)
