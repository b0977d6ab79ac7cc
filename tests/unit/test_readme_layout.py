"""README's layout table names every package of the tree and every module in it, and nothing
that is not there."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "gateway_api", "workers", "gateway_cli", "mock_provider")


def layout_rows() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Layout") :]
    section = section[: section.find("\n## ", 1)] if "\n## " in section[1:] else section
    rows = {}
    for line in section.splitlines():
        m = re.match(r"^\| `([^`]+/)` \| (.*) \|$", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def test_every_package_and_module_is_in_the_layout_table() -> None:
    rows = layout_rows()
    packages = sorted(
        f"{init.parent.relative_to(ROOT)}/"
        for top in PACKAGES
        for init in (ROOT / top).rglob("__init__.py")
    )
    assert sorted(set(packages) - set(rows)) == [], "packages missing from README's layout"
    for package in packages:
        named = set(re.findall(r"`([\w.]+\.(?:py|lua))`", rows[package]))
        present = {p.name for p in (ROOT / package).glob("*.py")} - {"__init__.py"}
        assert sorted(present - named) == [], f"{package}: modules missing from README"
        assert (
            sorted(
                named - present - {"__init__.py"} - {p.name for p in (ROOT / package).glob("*.lua")}
            )
            == []
        ), f"{package}: README names modules that are not there"
    for path in rows:
        assert (ROOT / path).is_dir(), f"README's layout names {path}, which is not a folder"
