"""``srdb data check ROOT``: does a data root hold what the training splits and the test commands expect?

The layout (``docs/data.md`` says where to get each set): training and validation frames are listed by the
``.txt`` splits in ``config/splits/`` (paths relative to the root); test sets are whole folders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.image_files import images_under


@dataclass(frozen=True)
class TestSet:
    folder: str  # relative to the data root
    use: str
    expected: int  # files (images, or the named file itself when ``folder`` is a file)


TEST_SETS = (
    TestSet("eo/bsd68", "deblur test (srdb score, the suite)", 68),
    TestSet("eo/sun_hays80", "deblur test (Levin kernels), validation (first 16)", 80),
    TestSet("eo/set5", "x4 SR test", 5),
    TestSet("eo/set14", "x4 SR test", 14),
    TestSet("eo/urban100_sample", "x4 SR test (every 5th Urban100 frame)", 20),
    TestSet("ir/hituav_val", "thermal deblur test", 100),
    TestSet("ir/roadscene_flir", "thermal x4 SR test", 100),
    TestSet("kernels/levin09_kernels.npz", "real camera-shake kernels (suite, test only)", 1),
    TestSet("deblur_real/GoPro_DeepDeblur_samples/images", "real GOPRO pairs (suite)", 4),
)


@dataclass(frozen=True)
class CheckRow:
    name: str
    use: str
    expected: int
    found: int
    missing: list[str]

    @property
    def ok(self) -> bool:
        return self.found >= self.expected and not self.missing


def check_split(root: Path, split: Path) -> CheckRow:
    """How many of a split's listed files are under ``root``."""
    lines = [line.strip() for line in split.read_text().splitlines()]
    listed = [line for line in lines if line and not line.startswith("#")]
    missing = [line for line in listed if not (root / line).is_file()]
    use = next((line.lstrip("# ") for line in lines if line.startswith("#")), "")
    return CheckRow(f"split {split.name}", use, len(listed), len(listed) - len(missing), missing)


def check_test_set(root: Path, test_set: TestSet) -> CheckRow:
    path = root / test_set.folder
    if path.suffix and not path.is_dir():
        found = int(path.is_file())
    else:
        found = len(images_under(path)) if path.is_dir() else 0
    missing = [] if found >= test_set.expected else [test_set.folder]
    return CheckRow(test_set.folder, test_set.use, test_set.expected, found, missing)


def check_layout(root: Path, splits_dir: Path) -> list[CheckRow]:
    """One row per split in ``splits_dir`` and per test set."""
    rows = [check_split(root, split) for split in sorted(splits_dir.glob("*.txt"))]
    return rows + [check_test_set(root, test_set) for test_set in TEST_SETS]


def data_check_command(root: str) -> int:
    """``srdb data check``: a table of what is there; exit 1 when anything is missing."""
    from ..resources import share_dir

    data_root = Path(root)
    if not data_root.is_dir():
        raise FileNotFoundError(f"{data_root}: data root not found (layout: docs/data.md)")
    rows = check_layout(data_root, share_dir() / "config" / "splits")
    print(f"{'set':44s} {'found':>7s} {'expected':>8s}  status")
    for row in rows:
        status = "ok" if row.ok else f"MISSING {len(row.missing)}: {', '.join(row.missing[:3])}"
        if len(row.missing) > 3:
            status += ", ..."
        print(f"{row.name:44s} {row.found:7d} {row.expected:8d}  {status}")
    missing = [row for row in rows if not row.ok]
    print(f"{data_root}: " + ("complete" if not missing else f"{len(missing)} of {len(rows)} sets incomplete"))
    return 1 if missing else 0
