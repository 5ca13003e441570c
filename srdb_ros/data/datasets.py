"""Training/validation data for the standard layouts, with seeded crops and flips.

Every sample is a pure function of (dataset seed, draw index), so a run resumed at step N draws exactly the
batches an uninterrupted run would have drawn, on any number of workers or ranks.

Layouts
- GOPRO: ``<root>/<split>/<sequence>/blur/*.png`` and ``.../sharp/*.png`` (:class:`GoProDataset`).
- Sharp folders (any photos, VGTSR HR frames): blur/sharp pairs made by :class:`MotionBlurSynthesizer`
  (:class:`SyntheticBlurDataset`).
- SR: HR folder (DIV2K, Urban100, VGTSR ``HR``) with LR made on the fly by antialiased bicubic x4 (a = -0.5,
  the MATLAB ``imresize`` kernel), or a matching LR folder (:class:`SRDataset`).
- Unlabelled IR folders for the DANN target domain (:class:`UnlabeledDataset`).
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..core.image_files import images_under, is_image_file
from ..core.imaging import bicubic_resize, to_unit
from .blur import MotionBlurSynthesizer, blur_extent


def read_split(list_file: str | Path, root: str | Path | None = None) -> list[Path]:
    """The image paths of a ``.txt`` split (one per line, ``#`` comments), relative to ``root`` if given, else
    to the list file's folder."""
    list_file = Path(list_file)
    base = Path(root) if root else list_file.parent
    lines = [line.strip() for line in list_file.read_text().splitlines()]
    listed = [(base / line).resolve() for line in lines if line and not line.startswith("#")]
    missing = [p for p in listed if not p.is_file()]
    if missing:
        hint = "" if root else " (is it a split relative to a data root? set data.root or pass --data-root)"
        raise FileNotFoundError(f"{missing[0]}: listed in {list_file} but not found{hint}")
    return listed


def list_images(folders: str | Path | list) -> list[Path]:
    """Images: files given directly, all images under folders (recursively, sorted), or ``.txt`` splits."""
    folders = [folders] if isinstance(folders, (str, Path)) else folders
    files: list[Path] = []
    for folder in folders:
        folder = Path(folder)
        if folder.suffix == ".txt" and folder.is_file():
            files += read_split(folder)
        elif is_image_file(folder) and folder.is_file():
            files.append(folder)
        elif folder.is_dir():
            files += images_under(folder)
        else:
            raise FileNotFoundError(f"{folder}: image folder not found")
    return files


def read_image(path: str | Path) -> np.ndarray:
    """An image file as HxWx3 float32 RGB in [0, 1]; grey frames are replicated, 16-bit frames gain-controlled."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"{path}: cannot be read as an image")
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    img = to_unit(img)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    else:
        img = img[:, :, ::-1]
    return np.ascontiguousarray(img)


def to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


def to_image(t: torch.Tensor) -> np.ndarray:
    """CxHxW tensor in [0, 1] -> HxWxC float32."""
    return t.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def augment(arrays: list[np.ndarray], rng: np.random.Generator, flips: bool = True) -> list[np.ndarray]:
    """The same random flips / 90-degree rotation for every array of a pair."""
    if not flips:
        return arrays
    if rng.random() < 0.5:
        arrays = [a[:, ::-1] for a in arrays]
    if rng.random() < 0.5:
        arrays = [a[::-1] for a in arrays]
    if rng.random() < 0.5:
        arrays = [a.transpose(1, 0, 2) for a in arrays]
    return [np.ascontiguousarray(a) for a in arrays]


def random_crop(img: np.ndarray, size: int, rng: np.random.Generator, multiple: int = 1) -> tuple[np.ndarray, int, int]:
    """A ``size`` crop (the image is reflect-padded if smaller); returns crop and its top-left (y, x)."""
    h, w = img.shape[:2]
    if h < size or w < size:
        img = cv2.copyMakeBorder(img, 0, max(0, size - h), 0, max(0, size - w), cv2.BORDER_REFLECT)
        h, w = img.shape[:2]
    y = int(rng.integers(0, (h - size) // multiple + 1)) * multiple
    x = int(rng.integers(0, (w - size) // multiple + 1)) * multiple
    return img[y : y + size, x : x + size], y, x


class _SeededDataset(Dataset):
    """Indexable by draw number; sample ``i`` picks its image and augmentation from rng(seed, i)."""

    def __init__(self, files: list[Path], seed: int, cache: bool = True) -> None:
        if not files:
            raise ValueError(f"{type(self).__name__}: no images found")
        self.files = files
        self.seed = seed
        self._cache: dict[Path, np.ndarray] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.files)

    def load(self, path: Path) -> np.ndarray:
        if self._cache is None:
            return read_image(path)
        if path not in self._cache:
            self._cache[path] = read_image(path)
        return self._cache[path]

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, index])

    def pick(self, rng: np.random.Generator) -> Path:
        return self.files[int(rng.integers(len(self.files)))]


class SyntheticBlurDataset(_SeededDataset):
    """(blurred crop, sharp crop) made from sharp images by seeded motion blur; with ``measure``, (blurred crop,
    its blur as ``length, e cos 2a, e sin 2a``) for the blur estimator (length, angle a and elongation e of the
    kernel, :func:`~srdb_ros.data.blur.blur_extent`)."""

    def __init__(
        self,
        folders,
        crop: int = 256,
        seed: int = 0,
        synthesizer: MotionBlurSynthesizer | None = None,
        flips: bool = True,
        measure: bool = False,
    ) -> None:
        super().__init__(list_images(folders), seed)
        self.crop = crop
        self.synth = synthesizer or MotionBlurSynthesizer(seed=seed)
        self.flips = flips
        self.measure = measure

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = self.rng(index)
        img = self.load(self.pick(rng))
        margin = self.synth.max_kernel_size // 2
        big, _, _ = random_crop(img, self.crop + 2 * margin, rng)
        sharp, blurred = (x[margin:-margin, margin:-margin] for x in self.synth.pair(big, index))
        if self.measure:  # the kernel takes the crop's flips, so the blur's axis follows the image
            blurred, kernel = augment([blurred, self.synth.kernel(index)[..., None]], rng, self.flips)
            e = blur_extent(kernel[..., 0])
            target = [e.length, e.elongation * math.cos(2 * e.angle), e.elongation * math.sin(2 * e.angle)]
            return to_tensor(blurred), torch.tensor(target, dtype=torch.float32)
        blurred, sharp = augment([blurred, sharp], rng, self.flips)
        return to_tensor(blurred), to_tensor(sharp)


class MixtureDataset(Dataset):
    """Draw ``i`` comes from one of several datasets, chosen by weight from rng(seed, i) (e.g. EO + IR pairs)."""

    def __init__(self, datasets: list[Dataset], weights: list[float], seed: int = 0) -> None:
        if len(datasets) != len(weights) or not datasets or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError("MixtureDataset needs one non-negative weight per dataset")
        self.datasets = datasets
        self.probs = np.asarray(weights, dtype=np.float64) / sum(weights)
        self.seed = seed

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)

    def __getitem__(self, index: int):
        pick = int(np.random.default_rng([self.seed, index, 99]).choice(len(self.datasets), p=self.probs))
        return self.datasets[pick][index]


class GoProDataset(_SeededDataset):
    """GOPRO layout ``<root>/<split>/<seq>/blur|sharp/*.png``: (blurred crop, sharp crop)."""

    def __init__(self, root, split: str = "train", crop: int = 256, seed: int = 0, flips: bool = True) -> None:
        blur = sorted(Path(root, split).glob("*/blur/*.png"))
        self.pairs = [(b, b.parent.parent / "sharp" / b.name) for b in blur]
        missing = [s for _, s in self.pairs if not s.is_file()]
        if missing:
            raise FileNotFoundError(f"{missing[0]}: sharp frame missing for a blurred one")
        super().__init__([b for b, _ in self.pairs], seed)
        self.crop = crop
        self.flips = flips

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = self.rng(index)
        b, s = self.pairs[int(rng.integers(len(self.pairs)))]
        blurred, sharp = self.load(b), self.load(s)
        blurred, y, x = random_crop(blurred, self.crop, rng)
        sharp = sharp[y : y + self.crop, x : x + self.crop]
        blurred, sharp = augment([blurred, sharp], rng, self.flips)
        return to_tensor(blurred), to_tensor(sharp)


class SRDataset(_SeededDataset):
    """(LR crop, HR crop) for x``scale`` SR; LR from an LR folder (same file names) or bicubic on the fly.

    With ``blur_prob`` > 0, that fraction of HR crops is motion-blurred before downscaling (the target stays
    sharp), which teaches SR through the deblurring encoder to remove blur.
    """

    def __init__(
        self,
        folders,
        lr_folder=None,
        scale: int = 4,
        lr_crop: int = 64,
        seed: int = 0,
        blur_prob: float = 0.0,
        synthesizer: MotionBlurSynthesizer | None = None,
        flips: bool = True,
    ) -> None:
        super().__init__(list_images(folders), seed)
        self.lr_folder = Path(lr_folder) if lr_folder else None
        self.scale = scale
        self.lr_crop = lr_crop
        self.blur_prob = blur_prob
        self.synth = synthesizer or MotionBlurSynthesizer(seed=seed + 7)
        self.flips = flips

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = self.rng(index)
        path = self.pick(rng)
        hr_full = self.load(path)
        s, hr_size = self.scale, self.lr_crop * self.scale
        if self.lr_folder is not None:
            lr_full = self.load(self.lr_folder / path.name)
            lr, y, x = random_crop(lr_full, self.lr_crop, rng)
            hr = hr_full[y * s : y * s + hr_size, x * s : x * s + hr_size]
            lr, hr = augment([lr, hr], rng, self.flips)
            return to_tensor(lr), to_tensor(hr)
        hr, _, _ = random_crop(hr_full, hr_size, rng, multiple=s)
        source = hr
        if self.blur_prob > 0 and rng.random() < self.blur_prob:
            source = self.synth.apply(hr, index)
        source, hr = augment([source, hr], rng, self.flips)
        return bicubic_resize(to_tensor(source), 1.0 / s), to_tensor(hr)


class UnlabeledDataset(_SeededDataset):
    """Random crops of unlabelled frames (the DANN target domain)."""

    def __init__(self, folders, crop: int = 256, seed: int = 0) -> None:
        super().__init__(list_images(folders), seed)
        self.crop = crop

    def __getitem__(self, index: int) -> torch.Tensor:
        rng = self.rng(index)
        img, _, _ = random_crop(self.load(self.pick(rng)), self.crop, rng)
        return to_tensor(augment([img], rng)[0])


def collate(samples: list) -> tuple[torch.Tensor, ...] | torch.Tensor:
    if isinstance(samples[0], torch.Tensor):
        return torch.stack(samples)
    return tuple(torch.stack(parts) for parts in zip(*samples))
