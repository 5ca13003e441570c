"""Which files are images: the one suffix list and folder walk shared by datasets, scoring, bags and `srdb enhance`."""

from __future__ import annotations

from pathlib import Path

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def images_under(folder: Path) -> list[Path]:
    """Every image file under ``folder``, recursively, sorted."""
    return sorted(p for p in Path(folder).rglob("*") if is_image_file(p))
