"""One camera of the enhance node: its input and output topics, newest pending frame and statistics."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

from ..core.contract import output_tasks
from .diagnostics import CameraStats

INFO_BUFFER = 30  # camera_info messages kept per camera to pair with images by stamp


@dataclass
class Camera:
    """Topics, the newest unprocessed frame and statistics of one camera (one name of the node's ``cameras``).

    ``images`` and ``info_pubs`` hold the output publishers by single task (``deblur``, ``sr``): the image on
    ``<cam>/<output>/image_raw`` and its sibling ``<cam>/<output>/camera_info``; ``compressed`` the
    ``<cam>/<output>/image_raw/compressed`` ones (``<cam>.compressed_outputs``); ``blur`` the blur estimate's
    publisher (``<cam>/blur``), when the model has an estimator.
    """

    name: str
    stats: CameraStats
    transport: str = "raw"  # of its input subscription: raw or compressed
    images: dict = field(default_factory=dict)
    info_pubs: dict = field(default_factory=dict)
    compressed: dict = field(default_factory=dict)
    blur: object = None
    inputs: list = field(default_factory=list)  # the subscriptions (image and camera_info) while active
    infos: deque = field(default_factory=lambda: deque(maxlen=INFO_BUFFER))  # recent camera_info messages
    pending: tuple[object, float] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, msg) -> bool:
        """Store the newest frame; True if an unprocessed one was replaced (a drop)."""
        with self.lock:
            replaced = self.pending is not None
            self.pending = (msg, time.perf_counter())
        return replaced

    def put_info(self, msg) -> None:
        with self.lock:
            self.infos.append(msg)

    def info_for(self, stamp, tolerance_s: float = 0.0):
        """The camera_info of the image stamped ``stamp`` (builtin_interfaces/Time): the most recent one whose stamp
        is within ``tolerance_s`` of it (0: the same stamp); None if there is none. ``has_infos`` tells whether
        the camera publishes camera_info at all."""
        target = stamp.sec * 1_000_000_000 + stamp.nanosec
        with self.lock:
            for info in reversed(self.infos):
                ns = info.header.stamp.sec * 1_000_000_000 + info.header.stamp.nanosec
                if abs(ns - target) <= tolerance_s * 1e9:
                    return info
        return None

    @property
    def has_infos(self) -> bool:
        return bool(self.infos)

    def take(self) -> tuple[object, float] | None:
        with self.lock:
            item, self.pending = self.pending, None
        return item

    def subscribers(self, task: str) -> int:
        """How many subscriptions listen to the outputs ``task`` produces or to the blur estimate (lazy processing
        skips at zero)."""
        outputs = output_tasks(task)
        pubs = [group[t] for group in (self.images, self.info_pubs, self.compressed) for t in outputs if t in group]
        return sum(p.get_subscription_count() for p in pubs) + self.blur_subscribers()

    def blur_subscribers(self) -> int:
        return 0 if self.blur is None else self.blur.get_subscription_count()

    def publishers(self) -> list:
        blur = [self.blur] if self.blur is not None else []
        return [*self.images.values(), *self.info_pubs.values(), *self.compressed.values(), *blur]
