"""A clone of the repository is all a reader has: no file in it may send the reader to a
document kept outside it (the team's folder beside the checkout, a design page that is not in
the tree), and every pointer to a section of docs/architecture.md names a section it has.

Files are those git lists, tracked or new and not ignored; binary files are skipped."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# Built from parts, so that this file does not match them itself.
_SHARED = "shared"
OUTSIDE = (
    re.compile(re.escape("../" + _SHARED)),
    re.compile(re.escape(_SHARED + "/reference")),
    re.compile(re.escape("/work/" + _SHARED)),
)
# A design page named by a path (or by its bare name) that must be a file of the repo.
DESIGN_PAGE = re.compile(r"[\w./-]*" + re.escape("DESIGN" + ".md"))
# `architecture.md "Section"`, `architecture.md's "Section"`, `architecture.md#section`.
SECTION_BY_TITLE = re.compile(r"architecture\.md(?:'s)?\s+\"([^\"]+)\"")
SECTION_BY_ANCHOR = re.compile(r"architecture\.md#([\w-]+)")


def repo_files() -> list[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return sorted({p for p in out.decode().split("\0") if p})


def read_text(path: str) -> str | None:
    """The file's text, or None for a binary file or one listed but gone."""
    try:
        data = (ROOT / path).read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None
    if b"\0" in data:
        return None
    return data.decode("utf-8", errors="replace")


def names_a_repo_file(token: str, where: str, files: set[str]) -> bool:
    for base in (ROOT, (ROOT / where).parent):
        target = (base / token).resolve()
        if target.is_relative_to(ROOT) and str(target.relative_to(ROOT)) in files:
            return True
    return False


def outside_references(text: str, where: str, files: set[str]) -> list[tuple[int, str]]:
    """(line number, line) of each line that points outside the repository."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if any(p.search(line) for p in OUTSIDE) or any(
            not names_a_repo_file(m.group(0), where, files) for m in DESIGN_PAGE.finditer(line)
        ):
            found.append((number, line.strip()))
    return found


def heading_titles(markdown: str) -> set[str]:
    return {m.group(1).strip() for m in re.finditer(r"^#+\s+(.+)$", markdown, re.MULTILINE)}


def anchor(title: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def test_no_file_of_the_repo_points_outside_it() -> None:
    files = repo_files()
    listed = set(files)
    found = [
        f"{path}:{number}: {line}"
        for path in files
        if (text := read_text(path)) is not None
        for number, line in outside_references(text, path, listed)
    ]
    assert found == [], "say it in the repo instead:\n" + "\n".join(found)


def test_every_pointer_to_an_architecture_section_names_one_it_has() -> None:
    titles = heading_titles(ARCHITECTURE.read_text())
    anchors = {anchor(t) for t in titles}
    wrong = []
    for path in repo_files():
        text = read_text(path)
        if text is None or path == "tests/unit/test_repo_self_contained.py":
            continue
        for m in SECTION_BY_TITLE.finditer(text):
            if " ".join(m.group(1).split()) not in titles:
                wrong.append(f"{path}: {m.group(0)!r}")
        for m in SECTION_BY_ANCHOR.finditer(text):
            if m.group(1) not in anchors:
                wrong.append(f"{path}: {m.group(0)!r}")
    assert wrong == [], "no such section in docs/architecture.md:\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    "line",
    [
        "see `../" + _SHARED + "/notes.md` (kept outside the repo)",
        "(" + _SHARED + "/reference/performance.md: 61% of samples)",
        "read /work/" + _SHARED + "/STYLE.md",
        "one row of " + "DESIGN" + ".md's error table",
        "docs/" + "DESIGN" + ".md, which this tree does not have",
    ],
)
def test_each_kind_of_outside_pointer_is_caught(line: str) -> None:
    assert outside_references(line, "README.md", {"README.md"}) == [(1, line)]


def test_pointers_into_the_repo_are_not_caught() -> None:
    files = {"README.md", "docs/" + "DESIGN" + ".md", "shared/state/fair.py"}
    text = "\n".join(
        [
            'see docs/architecture.md "Processes" and shared/state/fair.py',
            "tests/unit/" + _SHARED + "/config/ mirrors the package",
            "the page docs/" + "DESIGN" + ".md, when the tree has it",
        ]
    )
    assert outside_references(text, "README.md", files) == []


def test_headings_and_their_anchors_are_read_as_github_reads_them() -> None:
    titles = heading_titles("# Architecture\n\n## Job lifecycle\n")
    assert "Job lifecycle" in titles
    assert "Leases" not in titles
    assert anchor("Errors and what happens to them") == "errors-and-what-happens-to-them"
