"""Seeded synthetic motion blur (the VGTDB recipe): random camera-shake trajectories rasterised into kernels.

The trajectory model follows Boracchi & Foi ("Modeling the performance of image restoration from
motion blur", TIP 2012), as used by DeblurGAN and by the paper for VGTDB: a random walk with inertia, a
centripetal pull, Gaussian jitter and occasional abrupt shakes, integrated over an exposure and splatted
with sub-pixel (bilinear) weights into a normalised kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class MotionBlurSynthesizer:
    """Makes blur kernels and blurred images; every draw is reproducible from (seed, index)."""

    kernel_size: int = 31
    min_length: float = 4.0  # trajectory length in pixels (the bundled model was trained on 4-20)
    max_length: float = 20.0
    steps: int = 256
    noise_sigma: float = 0.0  # Gaussian noise std added after blurring, in [0, 1] units
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kernel_size % 2 == 0 or self.kernel_size < 3:
            raise ValueError("kernel_size must be odd and >= 3")
        if not 0 < self.min_length <= self.max_length < self.kernel_size:
            raise ValueError("need 0 < min_length <= max_length < kernel_size")

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, index])

    def trajectory(self, rng: np.random.Generator) -> np.ndarray:
        """Complex positions of the camera-shake path (pixels), length drawn in [min_length, max_length]."""
        length = rng.uniform(self.min_length, self.max_length)
        anxiety = 0.1 * rng.random()
        centripetal = 0.7 * rng.random()
        big_shake = 0.2 * rng.random()
        jitter = 10.0 * rng.random()
        step = length / (self.steps - 1)
        v = np.exp(1j * rng.uniform(0, 2 * np.pi)) * step
        x = np.zeros(self.steps, dtype=np.complex128)
        for t in range(self.steps - 1):
            shake = 2 * v * np.exp(1j * (np.pi + rng.random() - 0.5)) if rng.random() < big_shake * anxiety else 0
            dv = (
                shake
                + anxiety * (jitter * complex(rng.standard_normal(), rng.standard_normal()) - centripetal * x[t]) * step
            )
            v = v + dv
            v = v / (abs(v) + 1e-12) * step
            x[t + 1] = x[t] + v
        return x

    def kernel(self, index: int) -> np.ndarray:
        """A normalised float32 kernel of ``kernel_size`` squared for draw ``index``."""
        rng = self.rng(index)
        x = self.trajectory(rng)
        exposure = rng.uniform(0.5, 1.0)  # fraction of the trajectory inside the exposure
        x = x[: max(2, int(len(x) * exposure))]
        x = x - (x.real.min() + x.real.max()) / 2 - 1j * (x.imag.min() + x.imag.max()) / 2
        k = self.kernel_size
        c = k // 2
        px, py = x.real + c, x.imag + c
        px, py = np.clip(px, 0, k - 1.001), np.clip(py, 0, k - 1.001)
        x0, y0 = np.floor(px).astype(int), np.floor(py).astype(int)
        fx, fy = px - x0, py - y0
        kernel = np.zeros((k, k), dtype=np.float64)
        np.add.at(kernel, (y0, x0), (1 - fx) * (1 - fy))
        np.add.at(kernel, (y0, x0 + 1), fx * (1 - fy))
        np.add.at(kernel, (y0 + 1, x0), (1 - fx) * fy)
        np.add.at(kernel, (y0 + 1, x0 + 1), fx * fy)
        return (kernel / kernel.sum()).astype(np.float32)

    def apply(self, image: np.ndarray, index: int) -> np.ndarray:
        """Blur an HxW[xC] image (uint8, uint16 or float in [0, 1]) with kernel ``index``; same dtype out."""
        kernel = self.kernel(index)
        src = image.astype(np.float32)
        out = cv2.filter2D(src, -1, kernel, borderType=cv2.BORDER_REFLECT)
        if self.noise_sigma > 0:
            scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(image.dtype, 1.0)
            out = out + self.rng(index + 1_000_003).normal(0, self.noise_sigma * scale, out.shape).astype(np.float32)
        if image.dtype == np.uint8:
            return np.clip(np.rint(out), 0, 255).astype(np.uint8)
        if image.dtype == np.uint16:
            return np.clip(np.rint(out), 0, 65535).astype(np.uint16)
        return np.clip(out, 0.0, 1.0).astype(image.dtype)
