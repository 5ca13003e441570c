"""Documentation and package metadata: Markdown that renders, a README that is a landing page, no pointers a
user cannot follow, the licence, URLs and changelog, and `srdb data check` against docs/data.md."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from srdb_ros.cli import main
from srdb_ros.data.layout import TEST_SETS, check_layout

ROOT = Path(__file__).resolve().parents[1]
USER_DOCS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
USER_DOCS += ["models/README.md", "samples/README.md"]


SKIPPED = {".venv", "venv", "build", "install", "log", "runs", "demo_out", "reports", ".data", ".git", ".pytest_cache"}


def _markdown_files() -> list[Path]:
    """Every Markdown file of the source tree (build output, environments and run folders left out)."""
    found = [p for p in ROOT.rglob("*.md") if not SKIPPED & set(p.relative_to(ROOT).parts)]
    return sorted(set(found) | {ROOT / f for f in USER_DOCS})


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_code_fences_are_balanced(path):
    fences = [line for line in path.read_text().splitlines() if line.lstrip().startswith("```")]
    assert len(fences) % 2 == 0, f"{path.name}: {len(fences)} code fences, one is never closed"


def test_readme_is_a_landing_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) <= 12 * 1024
    assert re.search(r"^make demo$", readme, re.M) and re.search(r"^make test$", readme, re.M)
    assert "make test-fast" in readme and "srdb enhance" in readme
    for linked in re.findall(r"`((?:docs|models|samples)/[\w./-]+\.(?:md|png))`", readme):
        assert (ROOT / linked).is_file(), f"README points at {linked}, which does not exist"
    assert "](docs/overview.png)" in readme and (ROOT / "docs" / "overview.png").is_file()


@pytest.mark.parametrize("name", USER_DOCS)
def test_user_docs_point_only_at_what_users_have(name):
    text = (ROOT / name).read_text()
    assert not re.search(r"\bissues? #?\d+", text, re.I), f"{name} cites an issue tracker users cannot see"
    assert "../shared" not in text and "shared/weights" not in text and "shared/data" not in text, name
    assert "DESIGN.md" not in text, f"{name} cites a document that is not in the repository"


def test_licence_urls_and_changelog_match_package_xml():
    from catkin_pkg.changelog import get_changelog_from_path

    package = ET.parse(ROOT / "package.xml").getroot()
    assert package.findtext("license") == "Apache-2.0"
    licence = (ROOT / "LICENSE").read_text()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    assert {u.get("type") for u in package.findall("url")} == {"website", "repository", "bugtracker"}
    changelog = get_changelog_from_path(str(ROOT / "CHANGELOG.rst"))
    versions = [version for version, _, _ in changelog.foreach_version()]
    assert package.findtext("version") in versions


def test_data_doc_names_every_split_and_test_set():
    data_doc = (ROOT / "docs" / "data.md").read_text()
    for split in (ROOT / "config" / "splits").glob("*.txt"):
        assert f"`{split.name}`" in data_doc
    for test_set in TEST_SETS:
        assert f"`{test_set.folder}" in data_doc


def test_data_check_says_what_is_missing(tmp_path, capsys):
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "eo_train.txt").write_text("# EO training frames\neo/pool/a.png\neo/pool/b.png\n")
    root = tmp_path / "root"
    (root / "eo" / "pool").mkdir(parents=True)
    (root / "eo" / "pool" / "a.png").write_bytes(b"")
    rows = {row.name: row for row in check_layout(root, splits)}
    split = rows["split eo_train.txt"]
    assert (split.expected, split.found, split.missing) == (2, 1, ["eo/pool/b.png"])
    assert not rows["eo/bsd68"].ok and rows["eo/bsd68"].found == 0
    for test_set in TEST_SETS:  # fill every test set: only the split is still incomplete
        path = root / test_set.folder
        if path.suffix:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
        else:
            path.mkdir(parents=True, exist_ok=True)
            for i in range(test_set.expected):
                (path / f"{i}.png").write_bytes(b"")
    assert [row.name for row in check_layout(root, splits) if not row.ok] == ["split eo_train.txt"]
    assert main(["data", "check", str(root)]) == 1  # against the installed splits: nearly everything missing
    assert "MISSING" in capsys.readouterr().out
    assert main(["data", "check", str(tmp_path / "nowhere")]) != 0
