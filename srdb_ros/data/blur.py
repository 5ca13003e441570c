"""Seeded synthetic motion blur for training and evaluation pairs: camera shake, platform motion, sensor noise.

EO (:class:`MotionBlurSynthesizer`)
- Trajectories: camera shake after Boracchi & Foi ("Modeling the performance of image restoration from motion
  blur", TIP 2012; the recipe DeblurGAN and the paper's VGTDB use: a random walk with inertia, a centripetal
  pull, jitter and abrupt shakes), straight platform motion with a changing speed, and curved (arc) motion.
  The exposed path length is drawn uniformly in ``[min_length, max_length]`` pixels; the default upper
  bound, 48 px, is 7.5 % of a 640-px-wide frame, where real shake and platform motion reach 40-60 px.
- Kernels: the path is splatted with sub-pixel (bilinear) weights into a kernel whose size follows the
  path's extent; every kernel sums to one and has its centroid on the centre pixel, so a blurred frame is not
  shifted against its sharp target on average (the sharp frame is the scene at mid-exposure, as in GOPRO).
- Blur in linear light: the sRGB curve is undone before the convolution and re-applied after it, as light
  adds up on the sensor. Then Poisson-Gaussian sensor noise (signal-dependent shot noise plus read noise) in
  linear light, and optionally JPEG compression.

IR (:class:`ThermalBlurSynthesizer`)
- A microbolometer integrates with a thermal time constant instead of a shutter: the smear along the
  motion decays exponentially into the past (newest position brightest). The sharp frame is the scene at
  readout, so the kernel's newest position sits on the centre pixel: a smeared frame shows the scene in place
  with a fading trail behind it. Thermal counts are linear, so no gamma; noise is temporal (NETD-like
  Gaussian) plus column fixed-pattern noise.

Every draw (kernel, noise, JPEG) is a pure function of ``(seed, index)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

MOTIONS = ("shake", "linear", "curved")


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """The sRGB decoding curve (IEC 61966-2-1) on values in [0, 1]."""
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """The sRGB encoding curve on linear values in [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def _unit_scale(dtype: np.dtype) -> float:
    return {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(np.dtype(dtype), 1.0)


@dataclass(frozen=True)
class MotionBlurSynthesizer:
    """Makes blur kernels and blurred, noisy EO frames; every draw is reproducible from (seed, index)."""

    min_length: float = 4.0  # exposed path length in pixels, drawn uniformly in [min_length, max_length]
    max_length: float = 48.0
    motion_probs: tuple[float, float, float] = (0.6, 0.2, 0.2)  # shake, linear, curved
    linear_light: bool = True  # blur in linear light (undo and re-apply the sRGB curve)
    shot_noise: float = 0.01  # max Poisson gain: variance a * signal, a drawn in [0, shot_noise]
    read_noise: float = 0.01  # max Gaussian read-noise std, drawn in [0, read_noise] (units of full scale)
    jpeg_prob: float = 0.0  # fraction of frames JPEG-compressed after the noise
    jpeg_quality: tuple[int, int] = (60, 95)
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.min_length <= self.max_length:
            raise ValueError(f"need 0 < min_length <= max_length, got {self.min_length}, {self.max_length}")
        probs = tuple(float(p) for p in self.motion_probs)
        if len(probs) != len(MOTIONS) or min(probs) < 0 or sum(probs) <= 0:
            raise ValueError(f"motion_probs needs {len(MOTIONS)} non-negative weights ({', '.join(MOTIONS)})")
        object.__setattr__(self, "motion_probs", probs)
        if self.shot_noise < 0 or self.read_noise < 0 or not 0 <= self.jpeg_prob <= 1:
            raise ValueError("noise levels must be >= 0 and jpeg_prob in [0, 1]")
        object.__setattr__(self, "jpeg_quality", tuple(int(q) for q in self.jpeg_quality))

    @classmethod
    def from_dict(cls, data: dict, seed: int) -> MotionBlurSynthesizer:
        """From a config section; unknown keys are an error (a typo must not fall back to a default)."""
        known = set(cls.__dataclass_fields__) - {"seed"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown blur keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data, seed=seed)

    @property
    def max_kernel_size(self) -> int:
        """An upper bound of the kernel side for any draw (for crop margins)."""
        return 2 * math.ceil(self.max_length) + 3

    def rng(self, index: int, stream: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, index, stream])

    # -- trajectories ----------------------------------------------------------------------------------------
    def draw(self, index: int) -> tuple[str, float, np.ndarray, np.ndarray]:
        """(motion kind, exposed path length, complex positions, per-sample weights) of draw ``index``."""
        rng = self.rng(index)
        kind = MOTIONS[int(rng.choice(len(MOTIONS), p=np.asarray(self.motion_probs) / sum(self.motion_probs)))]
        length = float(rng.uniform(self.min_length, self.max_length))
        samples = max(64, int(6 * length))
        path = {"shake": _shake_path, "linear": _linear_path, "curved": _curved_path}[kind](rng, samples)
        seg = np.abs(np.diff(path)).sum()
        path = path * (length / max(seg, 1e-9))
        return kind, length, path, self.weights(rng, samples)

    def weights(self, rng: np.random.Generator, samples: int) -> np.ndarray:
        """Exposure weight of each path sample (a shutter: uniform)."""
        return np.full(samples, 1.0 / samples)

    def anchor(self, path: np.ndarray, weights: np.ndarray) -> complex:
        """The path point the sharp frame shows, put on the kernel's centre: the exposure's centroid."""
        return complex(np.sum(path * weights) / weights.sum())

    def kernel(self, index: int) -> np.ndarray:
        """The normalised float32 kernel of draw ``index``, its anchor on the centre (odd side, follows the length)."""
        _, _, path, weights = self.draw(index)
        return rasterize(path, weights, self.anchor(path, weights))

    # -- images ------------------------------------------------------------------------------------------------
    def to_linear(self, x: np.ndarray) -> np.ndarray:
        return srgb_to_linear(x) if self.linear_light else x

    def from_linear(self, x: np.ndarray) -> np.ndarray:
        return linear_to_srgb(x) if self.linear_light else np.clip(x, 0.0, 1.0)

    def add_noise(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Poisson-Gaussian noise in linear light: variance ``a * x + s**2``."""
        a = rng.uniform(0, self.shot_noise)
        s = rng.uniform(0, self.read_noise)
        if a == 0 and s == 0:
            return x
        std = np.sqrt(np.maximum(a * x, 0) + s * s)
        return x + std * rng.standard_normal(x.shape).astype(np.float32)

    def apply(self, image: np.ndarray, index: int) -> np.ndarray:
        """Blur (+ noise, + JPEG) an HxW[xC] image (uint8, uint16 or float in [0, 1]); same dtype out."""
        scale = _unit_scale(image.dtype)
        x = self.to_linear(image.astype(np.float32) / scale)
        x = cv2.filter2D(x, -1, self.kernel(index), borderType=cv2.BORDER_REFLECT)
        rng = self.rng(index, stream=1)
        x = self.from_linear(self.add_noise(x, rng))
        if self.jpeg_prob > 0 and rng.random() < self.jpeg_prob:
            x = jpeg_roundtrip(x, int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1)))
        return _to_dtype(x, image.dtype)


@dataclass(frozen=True)
class ThermalBlurSynthesizer(MotionBlurSynthesizer):
    """Microbolometer motion smear: exponentially decaying weights along the path, linear counts, NETD + FPN."""

    motion_probs: tuple[float, float, float] = (0.3, 0.4, 0.3)  # platform motion dominates on UAVs
    linear_light: bool = False
    shot_noise: float = 0.0
    read_noise: float = 0.01  # temporal noise (NETD) std, full-scale units
    column_noise: float = 0.004  # max column fixed-pattern noise std
    time_constant: tuple[float, float] = (0.15, 0.6)  # thermal time constant as a fraction of the path duration

    def weights(self, rng: np.random.Generator, samples: int) -> np.ndarray:
        tau = rng.uniform(*self.time_constant)
        t = np.linspace(0.0, 1.0, samples)
        w = np.exp(-(1.0 - t) / tau)  # the newest position (t = 1) dominates, older ones fade
        return w / w.sum()

    def anchor(self, path: np.ndarray, weights: np.ndarray) -> complex:
        """The newest position: a microbolometer frame shows the scene at readout, trailed by its past."""
        return complex(path[-1])

    def add_noise(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = super().add_noise(x, rng)
        c = rng.uniform(0, self.column_noise)
        if c == 0:
            return x
        columns = (c * rng.standard_normal(x.shape[1])).astype(np.float32)
        return x + (columns[None, :, None] if x.ndim == 3 else columns[None, :])


def synthesizer_for(domain: str, blur: dict, seed: int) -> MotionBlurSynthesizer:
    """The synthesiser of a domain (``eo`` camera blur or ``ir`` thermal smear) from a config section."""
    cls = ThermalBlurSynthesizer if domain == "ir" else MotionBlurSynthesizer
    return cls.from_dict(blur, seed)


# -- helpers ------------------------------------------------------------------------------------------------------
def _shake_path(rng: np.random.Generator, samples: int) -> np.ndarray:
    """Boracchi-Foi camera shake: inertial random walk with a centripetal pull, jitter and abrupt shakes."""
    anxiety = 0.1 * rng.random()
    centripetal = 0.7 * rng.random()
    big_shake = 0.2 * rng.random()
    jitter = 10.0 * rng.random()
    step = 1.0 / (samples - 1)
    v = np.exp(1j * rng.uniform(0, 2 * np.pi)) * step
    x = np.zeros(samples, dtype=np.complex128)
    normals = rng.standard_normal((samples, 2))
    uniforms = rng.random((samples, 2))
    for t in range(samples - 1):
        shake = 2 * v * np.exp(1j * (np.pi + uniforms[t, 1] - 0.5)) if uniforms[t, 0] < big_shake * anxiety else 0
        dv = shake + anxiety * (jitter * complex(normals[t, 0], normals[t, 1]) - centripetal * x[t]) * step
        v = v + dv
        v = v / (abs(v) + 1e-12) * step
        x[t + 1] = x[t] + v
    return x


def _linear_path(rng: np.random.Generator, samples: int) -> np.ndarray:
    """Straight platform motion whose speed changes linearly over the exposure (acceleration in [-0.6, 0.6])."""
    accel = rng.uniform(-0.6, 0.6)
    t = np.linspace(0.0, 1.0, samples)
    s = t + 0.5 * accel * t * t
    return s * np.exp(1j * rng.uniform(0, 2 * np.pi))


def _curved_path(rng: np.random.Generator, samples: int) -> np.ndarray:
    """An arc (turning platform or rolling camera) through 30 to 180 degrees."""
    sweep = rng.uniform(np.pi / 6, np.pi) * rng.choice([-1.0, 1.0])
    t = np.linspace(0.0, 1.0, samples)
    arc = (np.exp(1j * sweep * t) - 1) / (1j * sweep)  # unit-speed arc from 0
    return arc * np.exp(1j * rng.uniform(0, 2 * np.pi))


def rasterize(path: np.ndarray, weights: np.ndarray, centre: complex) -> np.ndarray:
    """Splat weighted complex positions bilinearly into an odd square kernel with ``centre`` on its centre pixel."""
    p = path - centre
    half = math.ceil(max(np.abs(p.real).max(), np.abs(p.imag).max())) + 1
    k = 2 * half + 1
    px, py = p.real + half, p.imag + half
    x0, y0 = np.floor(px).astype(int), np.floor(py).astype(int)
    fx, fy = px - x0, py - y0
    kernel = np.zeros((k, k), dtype=np.float64)
    np.add.at(kernel, (y0, x0), weights * (1 - fx) * (1 - fy))
    np.add.at(kernel, (y0, x0 + 1), weights * fx * (1 - fy))
    np.add.at(kernel, (y0 + 1, x0), weights * (1 - fx) * fy)
    np.add.at(kernel, (y0 + 1, x0 + 1), weights * fx * fy)
    return (kernel / kernel.sum()).astype(np.float32)


def jpeg_roundtrip(x: np.ndarray, quality: int) -> np.ndarray:
    """JPEG-compress and decode an HxW[x3] float RGB/grey image in [0, 1]."""
    u8 = np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)
    bgr = u8[:, :, ::-1] if u8.ndim == 3 else u8
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(bgr), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0
    return np.ascontiguousarray(out[:, :, ::-1]) if out.ndim == 3 else out


def _to_dtype(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    scale = _unit_scale(dtype)
    if np.dtype(dtype) in (np.dtype(np.uint8), np.dtype(np.uint16)):
        return np.clip(np.rint(x * scale), 0, scale).astype(dtype)
    return np.clip(x, 0.0, 1.0).astype(dtype)
