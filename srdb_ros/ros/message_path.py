"""The node's per-frame message path without DDS, for ``srdb bench --mode ros``: a sensor_msgs/Image in, the
conversion, the enhancer, the output Image messages built."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from ..core.contract import OUTPUT_NAMES, output_tasks
from ..inference import Enhancer, Frame
from .conversions import array_to_image_msg, image_msg_to_array


def message_path(enhancer: Enhancer, image: np.ndarray, task: str, encoding: str = "rgb8") -> Callable[[], dict]:
    """A callable that runs ``image`` (sent as ``encoding``) through the message path once and returns the stage
    timings in ms: convert, preprocess, infer, postprocess, to_message."""
    msg = array_to_image_msg(image, encoding)

    def run() -> dict[str, float]:
        t0 = time.perf_counter()
        decoded = image_msg_to_array(msg)
        t1 = time.perf_counter()
        result = enhancer.enhance_batch([Frame(decoded.array, task, decoded.color_order, decoded.radiometric)])[0]
        t2 = time.perf_counter()
        for single in output_tasks(task):
            array_to_image_msg(getattr(result, OUTPUT_NAMES[single]), decoded.encoding, msg.header)
        t3 = time.perf_counter()
        return dict(result.timings_ms, convert=(t1 - t0) * 1e3, to_message=(t3 - t2) * 1e3)

    return run
