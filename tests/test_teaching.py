"""book/teaching.md's table of time per chapter states the running times the chapters' headers state."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.md"))
UNITS = {"second": "s", "minute": "min"}


def teaching_rows() -> dict[int, list[str]]:
    """The cells of each row of the table of time per chapter, by chapter number."""
    text = (ROOT / "book" / "teaching.md").read_text()
    table = text[text.index("## Time per chapter"):].split("\n## ")[0]
    rows = {}
    for line in table.splitlines():
        found = re.match(r"\| (\d+)\. ", line)
        if found:
            rows[int(found.group(1))] = [cell.strip() for cell in line.strip("|").split("|")]
    return rows


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_the_teachers_table_states_the_chapters_running_time(path: Path):
    header = re.search(r"\*\*Running time\*\*: about (\d+) (second|minute)s?", path.read_text())
    assert header, f"{path.name}: no '**Running time**: about N seconds/minutes' in its header"
    stated = f"{header.group(1)} {UNITS[header.group(2)]}"
    row = teaching_rows().get(int(path.name[:2]))
    assert row, f"book/teaching.md, 'Time per chapter': no row for chapter {int(path.name[:2])}"
    assert row[2].startswith(stated), \
        f"book/teaching.md says {row[2]!r} for {path.name} under cpu; its header says about {stated}"
