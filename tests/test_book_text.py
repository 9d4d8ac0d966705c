"""The chapters' text, checked without executing them: code that fits the page, the apparatus of a course."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book"))
CODE_LINE_LIMIT = 88  # characters: what the HTML book shows without a scroll bar
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.md"))


def code_cells(text: str) -> list[tuple[int, str]]:
    """(line number of the fence, source) of every ``{code-cell}`` in a MyST notebook."""
    cells, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("```{code-cell}"):
            start, body = i + 1, []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            cells.append((start, "\n".join(body)))
        i += 1
    return cells


def test_the_cell_reader_finds_cells_and_their_lines():
    text = "# t\n```{code-cell} ipython3\nx = 1\ny = 2\n```\ntext\n```{code-cell} ipython3\nz = 3\n```\n"
    assert code_cells(text) == [(2, "x = 1\ny = 2"), (7, "z = 3")]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_code_fits_the_page(path: Path):
    long = [f"{path.name}:{start + n + 1}: {len(line)} characters"
            for start, source in code_cells(path.read_text())
            for n, line in enumerate(source.splitlines()) if len(line) > CODE_LINE_LIMIT]
    assert not long, f"code lines over {CODE_LINE_LIMIT} characters:\n" + "\n".join(long)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_goals_time_summary_and_exercises_with_answers(path: Path):
    text = path.read_text()
    headings = [h.strip().lower() for h in re.findall(r"^#+ (.+)$", text, re.M)]
    for wanted in ("learning goals", "summary", "exercises"):
        assert any(h.startswith(wanted) for h in headings), f"{path.name}: no '{wanted}' section"
    assert re.search(r"about \d+ (second|minute)s? on a 2-core", text, re.IGNORECASE), \
        f"{path.name}: no running time stated"
    assert ":class: dropdown" in text or "{dropdown}" in text, f"{path.name}: exercises without dropdown answers"
    assert "{cite}" in text, f"{path.name}: cites no paper"


GOOD_PAGE = """<html><body><main>
<h1>1. X<a class="headerlink">#</a></h1>
<h2>Learning goals<a class="headerlink">#</a></h2><ul><li>one</li></ul>
<p>About 8 seconds on a 2-core laptop. See <span class="bibtex-citation">[<a class="reference internal"
href="bibliography.html#id2">KALL18</a>]</span>.</p>
<div class="cell"><div class="cell_input"><pre>x = 1</pre></div>
<div class="cell_output"><audio controls="controls"><source src="data:audio/wav;base64,UklGR" /></audio></div></div>
<h2>Summary</h2><h2>Exercises</h2><div class="admonition dropdown"><p>Answer</p></div>
</main></body></html>"""


def test_the_html_check_passes_a_good_page_and_names_each_problem():
    from check_html import chapter_problems  # book/check_html.py

    assert chapter_problems(GOOD_PAGE) == []
    bad = (GOOD_PAGE.replace("Summary", "Recap").replace('class="admonition dropdown"', 'class="admonition"')
           .replace('<a class="reference internal"\nhref="bibliography.html#id2">KALL18</a>', "")
           .replace("x = 1", "x = 1" + " " * 90 + "# long")
           .replace('<source src="data:audio/wav;base64,UklGR" />', "")
           .replace("</main>", '<div class="cell_output">/tmp/pgsound-x/run</div></main>')
           .replace("</main>", '<div class="output stderr"><pre>auto.py:21: TqdmWarning: IProgress not found'
                               '</pre></div></main>'))
    problems = "\n".join(chapter_problems(bad))
    for expected in ("no 'summary' section", "no collapsed answers", "unresolved citation",
                     "no resolved citation", "code line of", "<audio> element without a source", "temporary path",
                     "a warning in an output: 'TqdmWarning: IProgress not found'"):
        assert expected in problems, (expected, problems)
