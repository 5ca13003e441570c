"""Seeded synthetic motion blur for training and evaluation pairs: a randomised formation model of camera shake,
platform motion, tone curve, saturation and sensor noise, after Real-ESRGAN/BSRGAN's randomised degradations.

Each pair draws, from its own ``(seed, index)``:

- **Scene** (:meth:`MotionBlurSynthesizer.scene`): with ``defocus_prob`` a random part of the sharp frame, from a
  patch to all of it, is out of focus (a disc of radius in ``defocus_radius``), in the target as in the input:
  depth of field and soft optics belong to the scene, and a network must not sharpen them.
- **Motion** (``motion_probs`` over :data:`MOTIONS`): camera shake after Boracchi & Foi ("Modeling the
  performance of image restoration from motion blur", TIP 2012: a random walk with inertia, a centripetal pull,
  jitter and abrupt shakes; the recipe DeblurGAN and the paper's VGTDB use), straight platform motion with a
  changing speed, curved (arc) motion (with ``curve_accel``, at a changing speed), and an inertial random walk
  whose velocity is white noise smoothed over a random time scale (``walk``: from jerky to smooth hand shake). With
  ``partial_exposure_prob`` the exposure covers only a random stretch of the drawn path (the shutter opens or
  closes anywhere along the motion).
- **Length**: the exposed path length, uniform in ``[min_length, max_length]`` pixels; a ``sharp_prob`` share of
  the pairs instead gets 0 to ``sharp_max_length`` px (sharp or nearly sharp, so a network learns to leave such
  frames alone).
- **Kernel**: the path splatted with sub-pixel (bilinear) weights into a kernel that sums to one; a shutter puts
  the exposure's centroid on the centre pixel (the sharp frame is the scene at mid-exposure, as in GOPRO).
- **Formation** (``formation_probs`` over :data:`FORMATIONS`): where the light adds up. ``linear``: the sRGB curve
  is undone before the convolution and re-applied after it (a sensor integrating light); ``display``: plain
  averaging of the stored values (how GOPRO's blurry frames were averaged); ``tone``: a power curve with an
  exponent drawn in ``tone_gamma`` (a camera tone curve in between). With ``highlight_prob``, frame regions at
  the top of the range are brightened by a factor in ``highlight_gain`` before blurring and clipped after it, as
  lights and sky saturate a sensor.
- **Noise**: with ``noise_prob``, Poisson-Gaussian sensor noise in linear light (variance ``a * x + s**2``,
  ``a`` uniform in ``[0, shot_noise]``, ``s`` in ``[0, read_noise]``, both maxima times a per-frame factor drawn
  log-uniformly in ``noise_scale``: quiet to strong), then with ``jpeg_prob`` JPEG compression.
  The training ranges come from real frames: flat regions of the real blurry GOPRO and HIDE frames hold 0.15-0.5
  grey levels of noise, the sharp GOPRO frames 0.4-0.7, a machine-vision sensor of 10 000 electrons full well
  1-2 grey levels at mid grey (``a`` = 1e-4), a small sensor at high gain 3-6 (``a`` = 1e-3); see
  ``docs/blur.md``.

The defaults (no sharp pairs, no partial exposure, linear light, no highlight boost, noise always on) are the
project's evaluation blur; every option added later draws from a separate random stream, so the defaults keep
their draws exactly.

IR (:class:`ThermalBlurSynthesizer`)
- A microbolometer integrates with a thermal time constant instead of a shutter: the smear along the motion
  decays exponentially into the past (newest position brightest). The sharp frame is the scene at readout, so
  the kernel's newest position sits on the centre pixel: a smeared frame shows the scene in place with a fading
  trail behind it. With ``shutter_prob`` a pair is instead integrated like a shutter camera (a cooled thermal
  camera: uniform weights, centroid on the centre). Thermal counts are linear (``display`` formation); noise is
  temporal (NETD-like Gaussian) plus column fixed-pattern noise.

Every draw (kernel, formation, noise, JPEG) is a pure function of ``(seed, index)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

MOTIONS = ("shake", "linear", "curved", "walk")
FORMATIONS = ("linear", "display", "tone")
# sensor noise as cameras deliver it (docs/blur.md: up to ~3 grey levels at mid grey), for demo and training configs
CAMERA_NOISE = {"shot_noise": 1e-3, "read_noise": 2e-3}
_FORMATION_STREAM = 2  # the random stream of every choice beyond the evaluation blur's (see the module docstring)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """The sRGB decoding curve (IEC 61966-2-1) on values in [0, 1]."""
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """The sRGB encoding curve on linear values in [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def _unit_scale(dtype: np.dtype) -> float:
    return {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(np.dtype(dtype), 1.0)


class BlurDraw(NamedTuple):
    """One draw's motion: its kind, exposed path length (px), complex path positions, per-sample exposure weights,
    and the path point the sharp frame shows (put on the kernel's centre)."""

    kind: str
    length: float
    path: np.ndarray
    weights: np.ndarray
    centre: complex


class Formation(NamedTuple):
    """One draw's image formation: tone curve (``curve`` and its ``gamma``), highlight gain (1: none), and the
    noise strength: a factor on the noise maxima (0: no noise)."""

    curve: str
    gamma: float
    highlight_gain: float
    noise_scale: float


def _probabilities(name: str, values, labels: tuple[str, ...]) -> tuple[float, ...]:
    probs = tuple(float(p) for p in values)
    if len(probs) != len(labels) or min(probs) < 0 or sum(probs) <= 0:
        raise ValueError(f"{name} needs {len(labels)} non-negative weights ({', '.join(labels)}), got {values}")
    return probs


def _pick(rng: np.random.Generator, probs: tuple[float, ...]) -> int:
    return int(rng.choice(len(probs), p=np.asarray(probs) / sum(probs)))


@dataclass(frozen=True)
class MotionBlurSynthesizer:
    """Makes blur kernels and blurred, noisy EO frames; every draw is reproducible from (seed, index)."""

    min_length: float = 4.0  # exposed path length in pixels, drawn uniformly in [min_length, max_length]
    max_length: float = 48.0
    motion_probs: tuple[float, ...] = (0.6, 0.2, 0.2, 0.0)  # shake, linear, curved, walk
    sharp_prob: float = 0.0  # share of pairs with a length in [0, sharp_max_length] instead (sharp / nearly sharp)
    sharp_max_length: float = 3.0
    curve_accel: float = 0.0  # max |acceleration| of arcs (their speed changes by up to this over the exposure)
    partial_exposure_prob: float = 0.0  # share of paths of which the exposure covers only a random stretch
    formation_probs: tuple[float, ...] = (1.0, 0.0, 0.0)  # linear light, display values, random tone curve
    tone_gamma: tuple[float, float] = (1.2, 2.2)  # exponent range of the ``tone`` formation's power curve
    highlight_prob: float = 0.0  # share of frames whose highlights saturate: brightened before the blur, clipped
    highlight_gain: tuple[float, float] = (1.5, 6.0)
    noise_prob: float = 1.0  # share of frames with sensor noise
    shot_noise: float = 0.01  # max Poisson gain: variance a * signal, a drawn in [0, shot_noise]
    read_noise: float = 0.01  # max Gaussian read-noise std, drawn in [0, read_noise] (units of full scale)
    noise_scale: tuple[float, float] = (1.0, 1.0)  # log-uniform factor on both maxima per frame: quiet to strong
    jpeg_prob: float = 0.0  # fraction of frames JPEG-compressed after the noise
    jpeg_quality: tuple[int, int] = (60, 95)
    defocus_prob: float = 0.0  # share of scenes with depth of field: part of the sharp frame itself out of focus
    defocus_radius: tuple[float, float] = (1.0, 8.0)  # radius of the out-of-focus disc, pixels
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.min_length <= self.max_length or self.max_length <= 0:
            raise ValueError(f"need 0 <= min_length <= max_length, got {self.min_length}, {self.max_length}")
        object.__setattr__(self, "motion_probs", _probabilities("motion_probs", self.motion_probs, MOTIONS))
        object.__setattr__(self, "formation_probs", _probabilities("formation_probs", self.formation_probs, FORMATIONS))
        shares = (
            self.sharp_prob,
            self.partial_exposure_prob,
            self.highlight_prob,
            self.noise_prob,
            self.jpeg_prob,
            self.defocus_prob,
        )
        if not all(0 <= p <= 1 for p in shares):
            raise ValueError(
                "sharp_prob, partial_exposure_prob, highlight_prob, noise_prob, jpeg_prob and defocus_prob "
                "must be in [0, 1]"
            )
        if self.shot_noise < 0 or self.read_noise < 0 or self.sharp_max_length < 0:
            raise ValueError("noise levels and sharp_max_length must be >= 0")
        for name in ("noise_scale", "defocus_radius"):
            if not 0 < getattr(self, name)[0] <= getattr(self, name)[1]:
                raise ValueError(f"{name} needs 0 < low <= high, got {getattr(self, name)}")
        if (
            not 1.0 <= self.tone_gamma[0] <= self.tone_gamma[1]
            or not 1.0 <= self.highlight_gain[0] <= self.highlight_gain[1]
        ):
            raise ValueError("tone_gamma and highlight_gain need 1 <= low <= high")
        object.__setattr__(self, "jpeg_quality", tuple(int(q) for q in self.jpeg_quality))
        for name in ("tone_gamma", "highlight_gain", "noise_scale", "defocus_radius"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))

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
        return 2 * math.ceil(max(self.max_length, self.sharp_max_length)) + 3

    def rng(self, index: int, stream: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, index, stream])

    # -- trajectories ----------------------------------------------------------------------------------------
    def draw(self, index: int) -> BlurDraw:
        """The motion of draw ``index``: kind, exposed length, path, exposure weights and the sharp frame's point."""
        rng = self.rng(index)
        extra = self.rng(index, _FORMATION_STREAM)
        kind = MOTIONS[_pick(rng, self.motion_probs)]
        length = float(rng.uniform(self.min_length, self.max_length))
        if self.sharp_prob > 0 and extra.random() < self.sharp_prob:
            length = float(extra.uniform(0.0, self.sharp_max_length))
        samples = max(64, int(6 * length))
        path = {"shake": _shake_path, "linear": _linear_path, "curved": _curved_path, "walk": _walk_path}[kind](
            rng, samples
        )
        if kind == "curved" and self.curve_accel > 0:
            path = _accelerated(path, extra.uniform(-self.curve_accel, self.curve_accel))
        if self.partial_exposure_prob > 0 and extra.random() < self.partial_exposure_prob:
            path = _exposed_stretch(path, extra)
            samples = len(path)
        seg = np.abs(np.diff(path)).sum()
        path = path * (length / max(seg, 1e-9))
        weights, shutter = self.exposure(rng, extra, samples)
        # a shutter's sharp frame is at mid-exposure (the centroid), whatever this synthesiser's own anchor is
        centre = MotionBlurSynthesizer.anchor(self, path, weights) if shutter else self.anchor(path, weights)
        return BlurDraw(kind, length, path, weights, centre)

    def exposure(self, rng: np.random.Generator, extra: np.random.Generator, samples: int) -> tuple[np.ndarray, bool]:
        """Exposure weight of each path sample, and whether the draw is a shutter's (a shutter: uniform)."""
        return np.full(samples, 1.0 / samples), True

    def anchor(self, path: np.ndarray, weights: np.ndarray) -> complex:
        """The path point the sharp frame shows, put on the kernel's centre: the exposure's centroid."""
        return complex(np.sum(path * weights) / weights.sum())

    def kernel(self, index: int) -> np.ndarray:
        """The normalised float32 kernel of draw ``index``, its anchor on the centre (odd side, follows the length)."""
        d = self.draw(index)
        return rasterize(d.path, d.weights, d.centre)

    # -- images ------------------------------------------------------------------------------------------------
    def scene(self, image: np.ndarray, index: int) -> np.ndarray:
        """The sharp frame as the optics deliver it (same dtype): with ``defocus_prob``, a random, softly bounded
        part of it, from a patch to all of it, out of focus by a disc of radius drawn in ``defocus_radius``
        (mixed in light). The training target and the blurred input are both made from it: depth of field is
        part of the scene, not motion blur, so a network learns to leave it and the estimator not to count it."""
        rng = self.rng(index, _FORMATION_STREAM + 2)
        if self.defocus_prob == 0 or rng.random() >= self.defocus_prob:
            return image
        scale = _unit_scale(image.dtype)
        form = self.formation(index)
        x = to_light(image.astype(np.float32) / scale, form)
        soft = cv2.filter2D(x, -1, disc_kernel(rng.uniform(*self.defocus_radius)), borderType=cv2.BORDER_REFLECT)
        cells = int(rng.integers(2, 7))
        field = cv2.resize(rng.standard_normal((cells, cells)).astype(np.float32), x.shape[1::-1], cv2.INTER_CUBIC)
        edge = float(np.quantile(field, 1.0 - rng.uniform(0.3, 1.0)))
        mask = np.clip((field - edge) / (0.25 * field.std() + 1e-6) + 0.5, 0.0, 1.0)
        mask = mask[..., None] if x.ndim == 3 else mask
        return _to_dtype(from_light(x + mask * (soft - x), form), image.dtype)

    def pair(self, image: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``index``'s training pair from a sharp frame: (its :meth:`scene`, the scene's blurred exposure)."""
        sharp = self.scene(image, index)
        return sharp, self.apply(sharp, index)

    def formation(self, index: int) -> Formation:
        """The tone curve, highlight gain and noise strength of draw ``index``."""
        extra = self.rng(index, _FORMATION_STREAM + 1)
        curve = FORMATIONS[_pick(extra, self.formation_probs)]
        gamma = {"linear": 2.4, "display": 1.0, "tone": float(extra.uniform(*self.tone_gamma))}[curve]
        gain = float(extra.uniform(*self.highlight_gain)) if extra.random() < self.highlight_prob else 1.0
        noisy = extra.random() < self.noise_prob
        low, high = self.noise_scale
        scale = float(np.exp(extra.uniform(np.log(low), np.log(high)))) if low < high else low
        return Formation(curve, gamma, gain, scale if noisy else 0.0)

    def add_noise(self, x: np.ndarray, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
        """Poisson-Gaussian noise in linear light: variance ``a * x + s**2``, the maxima times ``scale``."""
        a = rng.uniform(0, self.shot_noise * scale)
        s = rng.uniform(0, self.read_noise * scale)
        if a == 0 and s == 0:
            return x
        std = np.sqrt(np.maximum(a * x, 0) + s * s)
        return x + std * rng.standard_normal(x.shape).astype(np.float32)

    def apply(self, image: np.ndarray, index: int) -> np.ndarray:
        """Blur (+ noise, + JPEG) an HxW[xC] image (uint8, uint16 or float in [0, 1]); same dtype out."""
        scale = _unit_scale(image.dtype)
        form = self.formation(index)
        values = image.astype(np.float32) / scale
        x = to_light(values, form)
        if form.highlight_gain > 1:
            x = x * (1 + (form.highlight_gain - 1) * _highlights(values))
        x = cv2.filter2D(x, -1, self.kernel(index), borderType=cv2.BORDER_REFLECT)
        rng = self.rng(index, stream=1)
        if form.noise_scale > 0:
            x = self.add_noise(x, rng, form.noise_scale)
        x = from_light(x, form)
        if self.jpeg_prob > 0 and rng.random() < self.jpeg_prob:
            x = jpeg_roundtrip(x, int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1)))
        return _to_dtype(x, image.dtype)


@dataclass(frozen=True)
class ThermalBlurSynthesizer(MotionBlurSynthesizer):
    """Microbolometer motion smear: exponentially decaying weights along the path, linear counts, NETD + FPN."""

    motion_probs: tuple[float, ...] = (0.3, 0.4, 0.3, 0.0)  # platform motion dominates on UAVs
    formation_probs: tuple[float, ...] = (0.0, 1.0, 0.0)  # thermal counts are linear: blur the stored values
    shot_noise: float = 0.0
    read_noise: float = 0.01  # temporal noise (NETD) std, full-scale units
    column_noise: float = 0.004  # max column fixed-pattern noise std
    time_constant: tuple[float, float] = (0.15, 0.6)  # thermal time constant as a fraction of the path duration
    shutter_prob: float = 0.0  # share of pairs integrated like a shutter camera (cooled thermal cameras)

    def exposure(self, rng: np.random.Generator, extra: np.random.Generator, samples: int) -> tuple[np.ndarray, bool]:
        if self.shutter_prob > 0 and extra.random() < self.shutter_prob:
            return np.full(samples, 1.0 / samples), True
        tau = rng.uniform(*self.time_constant)
        t = np.linspace(0.0, 1.0, samples)
        w = np.exp(-(1.0 - t) / tau)  # the newest position (t = 1) dominates, older ones fade
        return w / w.sum(), False

    def anchor(self, path: np.ndarray, weights: np.ndarray) -> complex:
        """The newest position: a microbolometer frame shows the scene at readout, trailed by its past."""
        return complex(path[-1])

    def add_noise(self, x: np.ndarray, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
        x = super().add_noise(x, rng, scale)
        c = rng.uniform(0, self.column_noise * scale)
        if c == 0:
            return x
        columns = (c * rng.standard_normal(x.shape[1])).astype(np.float32)
        return x + (columns[None, :, None] if x.ndim == 3 else columns[None, :])


def synthesizer_for(domain: str, blur: dict, seed: int) -> MotionBlurSynthesizer:
    """The synthesiser of a domain (``eo`` camera blur or ``ir`` thermal smear) from a config section."""
    cls = ThermalBlurSynthesizer if domain == "ir" else MotionBlurSynthesizer
    return cls.from_dict(blur, seed)


# -- formation ----------------------------------------------------------------------------------------------------
def to_light(values: np.ndarray, form: Formation) -> np.ndarray:
    """Stored values in [0, 1] -> the quantity that adds up during the exposure, by the formation's tone curve."""
    if form.curve == "linear":
        return srgb_to_linear(values)
    return np.power(np.clip(values, 0.0, 1.0), form.gamma).astype(np.float32) if form.gamma != 1 else values


def from_light(x: np.ndarray, form: Formation) -> np.ndarray:
    """The inverse of :func:`to_light`, clipping to [0, 1] (a saturated sensor)."""
    if form.curve == "linear":
        return linear_to_srgb(x)
    x = np.clip(x, 0.0, 1.0)
    return np.power(x, 1.0 / form.gamma).astype(np.float32) if form.gamma != 1 else x


def _highlights(values: np.ndarray) -> np.ndarray:
    """Weight of each pixel as a saturated highlight: 0 below 90 % of full scale, rising to 1 at full scale."""
    level = values.max(axis=2, keepdims=True) if values.ndim == 3 else values
    return np.clip((level - 0.9) / 0.1, 0.0, 1.0).astype(np.float32)


# -- trajectories -------------------------------------------------------------------------------------------------
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


def _walk_path(rng: np.random.Generator, samples: int) -> np.ndarray:
    """Inertial random-walk shake: white-noise velocity smoothed over a random time scale (1-25 % of the
    exposure, jerky to smooth), around a random drift (0-2x the noise: from trembling to a sweep with wobble),
    with an acceleration along the drift in [-0.8, 0.8]."""
    sigma = max(1.0, rng.uniform(0.01, 0.25) * samples)
    taps = np.exp(-0.5 * (np.arange(-math.ceil(3 * sigma), math.ceil(3 * sigma) + 1) / sigma) ** 2)
    noise = rng.standard_normal((2, samples + len(taps) - 1))
    velocity = np.convolve(noise[0], taps, "valid") + 1j * np.convolve(noise[1], taps, "valid")
    velocity /= np.abs(velocity).mean() + 1e-12
    t = np.linspace(0.0, 1.0, samples)
    drift = rng.uniform(0.0, 2.0) * np.exp(1j * rng.uniform(0, 2 * np.pi)) * (1 + rng.uniform(-0.8, 0.8) * (t - 0.5))
    return np.concatenate([[0], np.cumsum(velocity + drift)[:-1]])


def _accelerated(path: np.ndarray, accel: float) -> np.ndarray:
    """The same path travelled with a speed that changes linearly over the exposure (``accel`` in (-2, 2))."""
    t = np.linspace(0.0, 1.0, len(path))
    s = (t + 0.5 * accel * t * t) / (1 + 0.5 * accel) * (len(path) - 1)
    index = np.arange(len(path))
    return np.interp(s, index, path.real) + 1j * np.interp(s, index, path.imag)


def _exposed_stretch(path: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A contiguous 30-100 % of the path, starting anywhere: the shutter opens or closes during the motion."""
    n = len(path)
    keep = max(16, int(n * rng.uniform(0.3, 1.0)))
    start = int(rng.integers(0, n - keep + 1))
    return path[start : start + keep]


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


def disc_kernel(radius: float) -> np.ndarray:
    """A defocus (pillbox) kernel of the given radius in pixels, antialiased at its rim, summing to one."""
    half = math.ceil(radius) + 1
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    kernel = np.clip(radius + 0.5 - np.hypot(xx, yy), 0.0, 1.0)
    return (kernel / kernel.sum()).astype(np.float32)


class BlurExtent(NamedTuple):
    """A kernel's blur: the length of the straight, uniform blur with the same spread (``sqrt(12 * trace of the
    kernel's covariance)``, pixels: a line of L pixels gives L, a point 0), the angle of its principal axis in
    radians in ``(-pi/2, pi/2]`` (x to the right, y down), and its elongation (0: round, 1: a line)."""

    length: float
    angle: float
    elongation: float


def blur_extent(kernel: np.ndarray) -> BlurExtent:
    """The :class:`BlurExtent` of a 2-D kernel (any scale: it is normalised here)."""
    k = np.asarray(kernel, np.float64)
    k = k / max(k.sum(), 1e-12)
    ys, xs = np.mgrid[: k.shape[0], : k.shape[1]]
    mx, my = (k * xs).sum(), (k * ys).sum()
    cxx, cyy = (k * (xs - mx) ** 2).sum(), (k * (ys - my) ** 2).sum()
    cxy = (k * (xs - mx) * (ys - my)).sum()
    angle = 0.5 * math.atan2(2 * cxy, cxx - cyy)
    spread = cxx + cyy
    elongation = math.hypot(cxx - cyy, 2 * cxy) / spread if spread > 1e-12 else 0.0
    return BlurExtent(
        math.sqrt(max(12.0 * spread, 0.0)), angle if angle > -math.pi / 2 else angle + math.pi, elongation
    )


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
