"""One camera of the enhance node: its input and output topics, newest pending frame and statistics."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from ..core.contract import output_tasks
from .diagnostics import CameraStats


@dataclass
class Camera:
    """Topics, the newest unprocessed frame and statistics of one camera (``eo`` or ``ir``).

    ``images`` and ``infos`` hold the output publishers by single task (``deblur``, ``sr``): the image on
    ``<cam>/<output>/image_raw`` and its sibling ``<cam>/<output>/camera_info``; ``blur`` the blur estimate's
    publisher (``<cam>/blur``), when the model has an estimator.
    """

    name: str
    stats: CameraStats
    images: dict = field(default_factory=dict)
    infos: dict = field(default_factory=dict)
    blur: object = None
    inputs: list = field(default_factory=list)  # the subscriptions (image and camera_info) while active
    camera_info: object = None
    pending: tuple[object, float] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, msg) -> bool:
        """Store the newest frame; True if an unprocessed one was replaced (a drop)."""
        with self.lock:
            replaced = self.pending is not None
            self.pending = (msg, time.perf_counter())
        return replaced

    def take(self) -> tuple[object, float] | None:
        with self.lock:
            item, self.pending = self.pending, None
        return item

    def subscribers(self, task: str) -> int:
        """How many subscriptions listen to the outputs ``task`` produces or to the blur estimate (lazy processing
        skips at zero)."""
        outputs = output_tasks(task)
        pubs = [self.images[t] for t in outputs if t in self.images] + [
            self.infos[t] for t in outputs if t in self.infos
        ]
        return sum(p.get_subscription_count() for p in pubs) + self.blur_subscribers()

    def blur_subscribers(self) -> int:
        return 0 if self.blur is None else self.blur.get_subscription_count()

    def publishers(self) -> list:
        return [*self.images.values(), *self.infos.values(), *([self.blur] if self.blur is not None else [])]
